"""`modelopsx submit` refuses bad input before anything is sent, with one clear message and no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def submit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelopsx.cli", "submit", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


@pytest.fixture(scope="module")
def host() -> str:
    return f"http://127.0.0.1:{closed_port()}"


def test_unknown_param_lists_the_valid_names(host: str) -> None:
    proc = submit("--host", host, "--param", "epochz=3")
    assert proc.returncode != 0
    assert "'epochz' names no parameter" in proc.stderr
    assert "epochs" in proc.stderr and "accelerator_type" in proc.stderr  # the valid names are listed
    assert "Traceback" not in proc.stderr


def test_cpu_pipeline_has_no_gpu_parameters(host: str) -> None:
    proc = submit("--host", host, "--cpu", "--param", "accelerator_type=nvidia.com/gpu")
    assert proc.returncode != 0
    assert "'accelerator_type' names no parameter" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_param_of_the_wrong_type(host: str) -> None:
    proc = submit("--host", host, "--param", "epochs=many")
    assert proc.returncode != 0
    assert "epochs='many' is not an integer" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unreachable_host_is_named(host: str) -> None:
    proc = submit("--host", host, "--param", "epochs=3")
    assert proc.returncode != 0
    assert f"host {host} is unreachable" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("trials", "message"),
    [
        ('[{"learning_rat": 0.001}]', "trials[0] has unknown key(s): learning_rat"),
        ("[]", "trials must be a non-empty list"),
        ('[{"epochs": -1}]', "trials[0].epochs must be a positive number"),
        ('[{"epochs": 2}, 3]', "trials[1] must be a non-empty object"),
    ],
)
def test_malformed_trials_are_refused(host: str, trials: str, message: str) -> None:
    proc = submit("--host", host, "--pipeline", "sweep", "--param", f"trials={trials}")
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_selection_metric_is_refused(host: str) -> None:
    proc = submit("--host", host, "--pipeline", "sweep", "--param", "selection_metric=F1")
    assert proc.returncode != 0
    assert "selection_metric 'F1' is not a metric" in proc.stderr and "mr2_reasonable" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_schedule(host: str) -> None:
    proc = submit("--host", host, "--schedule", "every day")
    assert proc.returncode != 0
    assert "is not a cron expression" in proc.stderr
    assert "Traceback" not in proc.stderr
