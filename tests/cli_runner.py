"""`modelopsx` run in-process, as the console entry point runs it: the same messages, streams and exit codes
as a subprocess, without starting Python and importing the libraries again for each call.

Tests about the real process (the installed entry point, exit codes of a killed process, signals, what
TensorFlow writes to file descriptor 2) keep a subprocess.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner


@dataclass(frozen=True)
class Ran:
    """What a subprocess.CompletedProcess would hold."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Ran:
    """`modelopsx ARGS` through `modelopsx.cli.main` (user errors become a message and exit code 2)."""
    from modelopsx.cli import main

    # MODELOPSX_VERBOSE leaves TensorFlow's import alone in the test process: hiding its start-up logging
    # captures file descriptor 2 (tests/unit/test_tensorflow_logging.py checks that in a real process).
    environment = {"MODELOPSX_VERBOSE": "1", **(env or {})}
    saved_argv, saved_cwd = sys.argv, Path.cwd()
    with CliRunner().isolation(env=environment) as (stdout, stderr, _):
        sys.argv = ["modelopsx", *args]
        if cwd is not None:
            os.chdir(cwd)
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.argv = saved_argv
            os.chdir(saved_cwd)
        return Ran(code, stdout.getvalue().decode(), stderr.getvalue().decode())
