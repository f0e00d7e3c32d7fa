"""`modelopsx run` refuses bad arguments before it starts anything (no emulator, no state dir)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"MODELOPSX_HOME": str(cwd / "state"), "COLUMNS": "300"}
    return subprocess.run(
        [sys.executable, "-m", "modelopsx.cli", "run", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("make", "extra", "message"),
    [
        (None, [], "is not a folder"),
        ("empty", [], "has no annotations.json"),
        ("dataset", ["--dataset-name", "no spaces allowed"], "invalid registry name"),
    ],
)
def test_bad_dataset_arguments_are_refused_before_anything_starts(
    tmp_path: Path, make: str | None, extra: list[str], message: str
) -> None:
    folder = tmp_path / "data"
    if make is not None:
        folder.mkdir()
    if make == "dataset":
        (folder / "annotations.json").write_text("{}")
    done = run_cli("--dataset", str(folder), *extra, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "state").exists()  # no emulator data, no log: nothing started


def test_a_gate_policy_that_checks_nothing_is_refused_before_anything_starts(tmp_path: Path) -> None:
    done = run_cli("--param", 'gate_policy={"significance": null}', cwd=tmp_path)
    assert done.returncode == 2 and "it checks nothing" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "state").exists()
