"""`modelopsx compile`: the pipelines as KFP IR YAML, byte-for-byte reproducible from the same code."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

TRAINING_GPU = "training_pipeline.yaml"
TRAINING_CPU = "training_pipeline_cpu.yaml"
SWEEP = "sweep_pipeline.yaml"
DEFAULT_OUT = Path("pipelines/compiled")


def pipeline_builders() -> dict[str, Callable[[], Callable[..., Any]]]:
    """File name -> a function building that pipeline (imports KFP lazily)."""
    from modelopsx.pipelines.sweep_pipeline import build_sweep_pipeline
    from modelopsx.pipelines.training_pipeline import build_training_pipeline

    return {
        TRAINING_GPU: lambda: build_training_pipeline(gpu=True),
        TRAINING_CPU: lambda: build_training_pipeline(gpu=False),
        SWEEP: lambda: build_sweep_pipeline(gpu=True),
    }


def compile_pipelines(out_dir: Path = DEFAULT_OUT) -> list[Path]:
    """Write every pipeline's YAML into out_dir; returns the written paths."""
    from kfp import compiler

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in pipeline_builders().items():
        path = out_dir / name
        compiler.Compiler().compile(build(), str(path))
        path.write_text(stable_header(path.read_text()))
        written.append(path)
    return written


_DEFAULT_RE = re.compile(r"^(#    \w+: \w+ \[Default: )(.*)(\])$")


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def stable_header(text: str) -> str:
    """kfp's comment header prints dict defaults in protobuf map order, which varies between processes;
    print them with sorted keys so the compiled files are reproducible (the YAML body already is)."""
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if not line.startswith("#"):
            break
        match = _DEFAULT_RE.match(line)
        if match and match.group(2)[:1] in "[{":
            lines[index] = f"{match.group(1)}{_sorted(ast.literal_eval(match.group(2)))!r}{match.group(3)}"
    return "\n".join(lines)
