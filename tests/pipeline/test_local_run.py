"""The whole training pipeline through kfp.local against the Basin emulator, twice, with new data between.

Tiny on purpose (a couple dozen small images, one epoch, 64x96 input): this checks the wiring, the records and
the release loop, not model quality. The first run has no champion, so the candidate is gated against the
HOG baseline and (untrained) stays below it: nothing is deployed. The second run publishes new scenes as
the next dataset version, warm-starts from the first model and, under a policy without the baseline floor,
is promoted and deployed.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from modelopsx.gate.verdict import Reference
from modelopsx.workflow.local_run import format_summary, past_runs, run_local
from tests import cli_runner, tiny_run
from tests.cli_runner import Ran

ROOT = Path(__file__).resolve().parents[2]
TINY, IMAGES = tiny_run.PARAMS, tiny_run.IMAGES


@pytest.mark.slow
def test_first_run_faces_the_baseline_and_the_next_run_warm_starts_on_new_data(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = run_local(params=TINY, synthetic_images=IMAGES, new_batch=8, state=state, quiet=True)

    assert first.model_version == 1
    assert first.decision == "keep", first.reason  # one epoch from scratch does not beat HOG
    decision = first.extra["decision"]
    assert decision.reference == Reference("baseline", baseline="hog")
    assert [c.metric for c in decision.comparisons] == ["precision", "recall", "f1", "accuracy"]
    assert first.champion_version is None and not first.deployed
    assert not (state / "serving").exists()
    assert first.extra["training"]["initial_weights"] == "scratch"  # offline: ImageNet is never claimed
    assert set(first.metrics) >= {"precision", "recall", "f1", "accuracy", "ap50", "ap", "mr2_reasonable"}
    assert first.report is not None and first.report.read_text().lstrip().lower().startswith("<!doctype html")
    assert first.report.is_relative_to(state / "reports")
    assert (state / "basin").is_dir() and not list(state.glob("**/executor_output.json"))  # kfp root not kept
    text = format_summary(first)
    assert "does not beat the HOG baseline" in text and "1 epochs from scratch" in text
    assert "deploy: skipped (the gate decided keep, so there is nothing to deploy)" in text
    assert "This run" in first.report.read_text() and "95% interval" in first.report.read_text()

    promoting = tiny_run.promoting()
    second = run_local(params=promoting, synthetic_images=IMAGES, new_batch=8, state=state, quiet=True)

    assert second.model_version == 2
    assert second.dataset["seq"] == first.dataset["seq"] + 1  # new data arrived as the next version
    assert second.dataset["counts"]["images"] == 32
    assert second.extra["training"]["initial_weights"] == (
        "pedestrian-detector v1 (latest trained version, no champion yet)"
    )
    assert second.decision == "promote", second.reason
    assert second.champion_version == 2 and second.deployed
    served = sorted((state / "serving" / "pedestrian-detector").glob("*/saved_model.pb"))
    assert [p.parent.name for p in served] == ["1"]  # promotion seq 1
    runs = [(r["decision"], r["champion_after"]) for r in past_runs(state)]
    assert runs == [("keep", None), ("promote", 2)]


def run_cli(tmp_path: Path, *args: str) -> Ran:
    env = {"MODELOPSX_HOME": str(tmp_path / "state")}
    return cli_runner.run_cli("run", "--quiet", *args, env=env, cwd=ROOT)


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


@pytest.mark.slow
def test_a_two_trial_sweep_goes_through_the_same_release_path(tmp_path: Path) -> None:
    """`modelopsx run --pipeline sweep`: both trials train and evaluate, the best on validation is registered,
    gated and (under a policy without the baseline floor) deployed, like a single run."""
    trials = [{"learning_rate": 0.02}, {"learning_rate": 0.002}]
    params = {**tiny_run.promoting(), "trials": trials}
    state = tmp_path / "state"
    summary = run_local(params=params, synthetic_images=IMAGES, state=state, quiet=True, pipeline="sweep")

    assert summary.model_version == 1  # only the selected trial is registered
    assert summary.decision == "promote", summary.reason
    assert summary.champion_version == 1 and summary.deployed
    assert summary.report is not None and summary.report.is_file()
    assert summary.extra["parameters"]["learning_rate"] in (0.02, 0.002)
    assert summary.extra["training"]["epochs_run"] == 1
