"""Helpers of the local runner that need no pipeline run: failure messages and the progress log."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from modelopsx.workflow.local_run import _failure_details, _ProgressLog


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
    from modelopsx.gate import PolicyError
    from modelopsx.workflow.local_run import check_run_arguments

    policy = json.dumps({"significance": {"metric": "f1", "n_resamples": 10**8}})
    with pytest.raises(PolicyError, match=r"n_resamples must be an integer in 10\.\.100,000, got 100000000"):
        check_run_arguments(None, None, {"gate_policy": policy})
