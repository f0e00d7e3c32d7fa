# ModelOpsX — every target that needs Python depends on `setup`, so each is one command on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup run test lint bench compile images kind-load kind-up kind-down submit serve gpu-check lock clean

setup: $(STAMP)

# Idempotent: reinstalls only when the lock or the project metadata changes.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

run: setup
	$(BIN)/modelopsx run

test: setup
	$(BIN)/python -m pytest -n 2 --dist loadgroup tests/unit tests/integration tests/pipeline tests/reliability

lint: setup
	$(BIN)/ruff check modelopsx components pipelines tests
	$(BIN)/mypy modelopsx

bench: setup
	$(BIN)/python -m tests.benchmarks

compile: setup
	$(BIN)/modelopsx compile --out pipelines/compiled

gpu-check:
	KERAS_BACKEND=jax python3 tests/benchmarks/gpu_check.py

lock:
	rm -rf /tmp/modelopsx-lock && $(PYTHON) -m venv /tmp/modelopsx-lock
	/tmp/modelopsx-lock/bin/pip install --quiet -e ".[dev]"
	{ head -2 requirements.lock; /tmp/modelopsx-lock/bin/pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
