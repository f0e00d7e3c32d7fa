"""Helpers of the local runner that need no pipeline run: failure messages and the progress log."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelopsx.cli import app
from modelopsx.evaluation.report import RUN_SECTION_MARKER, insert_run_section
from modelopsx.gate.decide import decide
from modelopsx.gate.policy import GatePolicy
from modelopsx.workflow.local_run import (
    LocalRunSummary,
    _failure_details,
    _ProgressLog,
    add_decision_to_report,
    format_summary,
    local_pipeline,
    past_runs,
    pipeline_steps,
    record_run,
    run_record,
)


def test_failure_details_prefer_the_library_message_and_its_hint(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text(
        "Traceback\n  ValueError: inner\n    modelopsx.errors.NotFoundError: no dataset named 'x'\n"
        "      hint: publish one\n\x1b[91mERROR\x1b[0m Task 'ingest' failed\n"
    )
    assert _failure_details(log) == "no dataset named 'x'\n  hint: publish one"
    log.write_text("Traceback\n  tb.TBNotInstalledError: TensorBoard is not installed\nTask failed\n")
    assert _failure_details(log) == "tb.TBNotInstalledError: TensorBoard is not installed"


def test_progress_log_keeps_everything_and_echoes_task_ends(tmp_path: Path) -> None:
    console = io.StringIO()
    progress = _ProgressLog(tmp_path / "run.log", console)
    progress.write("12:00 - INFO - Executing task \x1b[96m'train'\x1b[0m\nepoch 1\n")
    progress.write("12:01 - INFO - Task \x1b[96m'train'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m\n")
    progress.close()
    assert "epoch 1" in (tmp_path / "run.log").read_text()
    assert console.getvalue().split()[:2] == ["train", "done"] and "epoch" not in console.getvalue()


def test_the_gate_policy_parameter_bounds_the_bootstrap_before_the_run() -> None:
    from modelopsx.gate.policy import PolicyError
    from modelopsx.workflow.local_run import check_run_arguments

    policy = json.dumps({"significance": {"metric": "f1", "n_resamples": 10**8}})
    with pytest.raises(PolicyError, match=r"n_resamples must be an integer in 10\.\.100,000, got 100000000"):
        check_run_arguments(None, None, {"gate_policy": policy})


# ------------------------------------------------------------------------ the summary, the report, past runs


HOG = {"accuracy": 0.82, "precision": 0.515, "recall": 0.341, "f1": 0.410}
MODEL = {"accuracy": 0.86, "precision": 0.147, "recall": 0.212, "f1": 0.174}
TRAINING_TASKS = ["ingest", "split", "augment", "train", "evaluate", "basin-sync", "compare"]


@dataclass
class Interval:
    delta: float
    low: float
    high: float
    p_value: float = 1.0


def first_run(tmp_path: Path) -> LocalRunSummary:
    """What the first `make run` on the built-in data reads back: kept against HOG, nothing deployed."""
    decision = decide(
        MODEL,
        HOG,
        GatePolicy.default(),
        {"f1": Interval(-0.237, -0.309, -0.162)},
        candidate_info={
            "model_name": "pedestrian-detector",
            "model_version": 1,
            "test_split_hash": "8e0de4e0d309" * 5,
        },
        champion_info={"baseline": "hog"},
    ).to_json()
    report = tmp_path / "reports" / "20261204-174210" / "index.html"
    report.parent.mkdir(parents=True)
    report.write_text(
        f"<!DOCTYPE html><html><body><h1>ModelOpsX evaluation</h1>{RUN_SECTION_MARKER}<p>metrics</p>"
    )
    summary = LocalRunSummary(
        run_id="20261204-174210",
        dataset={
            "name": "synthetic",
            "version": 1,
            "content_hash": "974eff2fe5b0872ce34d",
            "dvc_hash": "9b4955075eecd42b26ed2c0e34f65df9.dir",
            "counts": {"images": 600},
        },
        model_version=1,
        metrics=MODEL,
        decision=decision["decision"],
        reason=decision["reason"],
        champion_version=None,
        report=report,
        log=tmp_path / "logs" / "run.log",
        endpoint="http://127.0.0.1:1",
        wall_s=256.0,
        extra={"decision": decision, "training": {"epochs_run": 6, "initial_weights": "scratch"}},
        model_name="pedestrian-detector",
        synthetic_batch=100,
    )
    finished = {task: ("done", 1.0) for task in TRAINING_TASKS}
    summary.steps = pipeline_steps(local_pipeline("training"), finished, summary)
    return summary


def test_the_summary_names_every_step_the_decision_and_what_to_do_next(tmp_path: Path) -> None:
    text = format_summary(first_run(tmp_path))
    lines = text.splitlines()
    assert "steps      ingest, split, augment, train, evaluate, basin-sync, compare: done" in lines
    assert "           deploy: skipped (the gate decided keep, so there is nothing to deploy)" in lines
    assert "data       synthetic v1: 600 images (content 974eff2fe5b0, DVC 9b4955075eec)" in lines
    assert (
        "decision   Keep: model v1 does not beat the HOG baseline yet (worse on precision and recall; "
        in text
    )
    table = [line.split() for line in lines]
    assert ["metric", "HOG", "baseline", "model", "v1", "difference", "95%", "interval", "verdict"] in table
    assert ["f1", "0.410", "0.174", "-0.236", "-0.309", "..", "-0.162", "worse"] in table
    assert "  (both scored on the same test split 8e0de4e0d309)" in lines
    assert "champion   none yet (nothing deployed)" in lines
    assert f"report     {tmp_path / 'reports' / '20261204-174210' / 'index.html'}" in lines
    nexts = lines[lines.index("next") + 1 :]
    assert nexts[0].split("#")[1].strip() == (
        "100 new scenes arrive as synthetic v2; train from model v1 (no champion yet)"
    )
    assert any("modelopsx predict --model pedestrian-detector@v1 IMAGE..." in line for line in nexts)
    assert "champion ->" not in text and "(champion" not in text and "required +" not in text


def test_the_report_gets_the_decision_at_the_top_once(tmp_path: Path) -> None:
    summary = first_run(tmp_path)
    assert summary.report is not None
    add_decision_to_report(summary)
    add_decision_to_report(summary)  # a second pass replaces the section, never stacks it
    page = summary.report.read_text()
    assert page.count("<h2>This run</h2>") == 1
    assert page.index("This run") < page.index("<p>metrics</p>")
    assert "Keep: model v1 does not beat the HOG baseline yet" in page
    assert "<th>HOG baseline</th><th>model v1</th><th>difference</th><th>95% interval</th>" in page
    assert "none yet (nothing deployed)" in page
    # an older report without the marker gets the section right after its title
    assert insert_run_section("<h1>t</h1><p>x</p>", "<section/>") == "<h1>t</h1><section/><p>x</p>"


def test_past_runs_are_listed_with_their_decision_and_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELOPSX_HOME", str(tmp_path))
    runner = CliRunner()
    assert "no local runs recorded" in runner.invoke(app, ["runs"]).output
    summary = first_run(tmp_path)
    record_run(tmp_path, run_record(summary))
    (tmp_path / "runs" / "broken.json").write_text("{not json")  # skipped, never fatal
    assert [r["run_id"] for r in past_runs(tmp_path)] == ["20261204-174210"]
    result = runner.invoke(app, ["runs"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    header, row = result.output.splitlines()
    assert header.split()[:7] == ["finished", "(UTC)", "data", "model", "decision", "champion", "after"]
    assert row.split()[2:7] == ["synthetic", "v1", "v1", "keep", "none"]
    assert row.endswith(str(summary.report))
    as_json = runner.invoke(app, ["runs", "--json"])
    assert '"decision": "keep"' in as_json.output
