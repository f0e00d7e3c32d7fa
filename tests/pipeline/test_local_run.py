"""The whole training pipeline through kfp.local against the Basin emulator, twice on the same data.

Tiny on purpose (a couple dozen small images, one epoch, 64x96 input): this checks the wiring, the records and
the gate, not model quality. The first run has no champion, so it promotes; the second is gated against it on
the same test split and the decision record says why.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from modelopsx.gate import GatePolicy, decide
from modelopsx.workflow.local_run import run_local

ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "epochs": 1,
    "input_height": 64,
    "input_width": 96,
    "batch_size": 4,
    "augment_copies": 1,
    "weights": "none",
    "train_overrides": {"alpha": 0.35, "neck_channels": 16, "head_channels": 16, "lr_warmup_steps": 1},
}


@pytest.mark.slow
def test_first_run_promotes_and_second_run_is_gated_against_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = run_local(params=TINY, synthetic_images=24, state=state, quiet=True)

    assert first.model_version == 1
    assert first.decision == "promote", first.reason
    assert first.extra["decision"]["champion_metrics"] is None  # no champion: only value thresholds apply
    assert first.champion_version == 1 and first.deployed
    assert set(first.metrics) >= {"precision", "recall", "f1", "accuracy", "ap50", "ap", "mr2_reasonable"}
    assert first.report is not None and first.report.read_text().lstrip().lower().startswith("<!doctype html")
    assert first.report.is_relative_to(state / "reports")
    served = sorted((state / "serving" / "pedestrian-detector").glob("*/saved_model.pb"))
    assert [p.parent.name for p in served] == ["1"]  # promotion seq 1
    assert (state / "basin").is_dir() and not list(state.glob("**/executor_output.json"))  # kfp root not kept

    second = run_local(params=TINY, synthetic_images=24, state=state, quiet=True)

    assert second.model_version == 2
    assert second.dataset["seq"] == first.dataset["seq"]  # same data, not published again
    record = second.extra["decision"]
    assert record["champion"]["model_version"] == 1
    # same test split (though split afresh in another temporary folder): the stored metrics are reused
    assert record["champion"]["metrics_source"] == "model record"
    assert record["champion_metrics"] == pytest.approx(first.metrics)
    expected = decide(second.metrics, first.metrics, GatePolicy.default())
    assert second.decision == expected.decision and second.reason == expected.reason
    assert record["checks"] and all(c["reason"] for c in record["checks"])  # each check explains itself
    if second.decision == "promote":
        assert second.champion_version == 2
    else:
        assert second.champion_version == 1 and not second.deployed
        assert "champion" in second.reason.lower() or any(not c["passed"] for c in record["checks"])


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELOPSX_HOME": str(tmp_path / "state")}
    command = [sys.executable, "-m", "modelopsx.cli", "run", "--quiet", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=180)


def test_unknown_dataset_name_lists_what_exists(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "--param", "dataset_name=street-2031")
    assert proc.returncode != 0
    assert "no dataset named 'street-2031'" in proc.stderr and "known datasets: none" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "state" / "serving").exists()


def test_unreachable_basin_endpoint_is_named(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
    proc = run_cli(tmp_path, "--basin-endpoint", endpoint)
    assert proc.returncode != 0
    assert f"Basin endpoint {endpoint} is unreachable" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_param_is_refused_before_anything_runs(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "--param", "epochz=1")
    assert proc.returncode != 0
    assert "'epochz' names no parameter" in proc.stderr and "epochs" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "state" / "basin").exists()
