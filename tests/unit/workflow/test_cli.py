"""`modelopsx run` refuses bad arguments before it starts anything (no emulator, no state dir)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import cli_runner
from tests.cli_runner import Ran


def run_cli(*args: str, cwd: Path) -> Ran:
    env = {"MODELOPSX_HOME": str(cwd / "state"), "COLUMNS": "300"}
    return cli_runner.run_cli("run", *args, env=env, cwd=cwd)


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
