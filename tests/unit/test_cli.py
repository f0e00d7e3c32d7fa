"""The `modelopsx` command line: usage errors, and help that reads like git's at 80 columns."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from modelopsx.cli import app


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelopsx.cli", *args], capture_output=True, text=True)


def test_help_lists_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "run" in result.stdout


def test_unknown_command_fails_without_traceback() -> None:
    result = run_cli("no-such-command")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------------------------------- help text


ROOT_COMMAND = typer.main.get_command(app)


def command_paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [path]
    if hasattr(command, "commands"):  # a group (Typer's own click, so no isinstance on click's classes)
        for name, sub in command.commands.items():
            if not sub.hidden:
                paths += command_paths(sub, (*path, name))
    return paths


def command_at(path: tuple[str, ...]) -> Any:
    command: Any = ROOT_COMMAND
    for name in path:
        command = command.commands[name]
    return command


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("path", command_paths(ROOT_COMMAND), ids=lambda p: " ".join(p) or "modelopsx")
def test_every_help_fits_80_columns_uncut_with_every_option_described(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80, "\n".join(line for line in lines if len(line) > 80)
    assert "…" not in result.output
    assert "<bool>" not in result.output  # a flag takes no value
    command = command_at(path)
    if hasattr(command, "commands"):  # each subcommand's one-line summary is shown whole
        for name, sub in command.commands.items():
            summary = sub.get_short_help_str(limit=10_000)
            assert not summary.endswith("..."), f"{name}: summary too long for the listing"
            assert _words(summary) in _words(result.output), f"{name}: summary cut in the listing"
    undescribed = [
        param.name for param in command.params if not param.hidden and not (getattr(param, "help", "") or "")
    ]
    assert undescribed == []


def test_flags_take_no_value_and_version_prints(tmp_path: Path) -> None:
    runner = CliRunner()
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.output.startswith("modelopsx 0.")
    listed = runner.invoke(app, ["registry", "list", "datasets", "--json", "--store", str(tmp_path)])
    assert listed.exit_code == 0 and listed.output.strip() == "[]"
