"""TensorFlow's start-up log lines are dropped from stderr; everything else written there is kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelopsx.tensorflow_logging import filtered_stderr, is_start_up_log

START_UP = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1796406422.108295   14290 port.cc:153] oneDNN custom operations are on.\n",
    "I0000 00:00:1796406422.239006   14290 cpu_feature_guard.cc:227] This TensorFlow binary is optimized\n",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the "
    "appropriate compiler flags.\n",
    "2024-01-11 05:40:05.061907: I tensorflow/core/platform/cpu_feature_guard.cc:182] This TensorFlow\n",
]


def test_start_up_lines_are_recognised_and_others_are_not() -> None:
    assert all(is_start_up_log(line) for line in START_UP)
    assert not is_start_up_log("error: the model files may be incomplete\n")
    assert not is_start_up_log("E0000 00:00:1796406613.036643   20212 util.cc:131] a real error\n")


def test_filtered_stderr_drops_start_up_lines_and_keeps_the_rest(capfd: pytest.CaptureFixture[str]) -> None:
    with filtered_stderr():
        for line in START_UP:
            os.write(2, line.encode())  # as C++ writes: straight to the file descriptor
        print("a python warning", file=sys.stderr)
    assert capfd.readouterr().err == "a python warning\n"


def test_the_cli_prints_no_tensorflow_start_up_logging(tmp_path: Path) -> None:
    """`predict` on a folder whose model.keras is broken imports TensorFlow and Keras, then fails cleanly."""
    (tmp_path / "model.json").write_text("{}")
    (tmp_path / "model.keras").write_text("not a keras file")
    image = tmp_path / "x.jpg"
    image.write_bytes(b"")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP", "MODELOPSX_VERBOSE"))}
    command = [sys.executable, "-m", "modelopsx.cli", "predict", "--model", str(tmp_path), str(image)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2 and "cannot load the model" in result.stderr
    for noise in ("absl::InitializeLog", "port.cc", "cpu_feature_guard", "oneDNN"):
        assert noise not in result.stderr, result.stderr
