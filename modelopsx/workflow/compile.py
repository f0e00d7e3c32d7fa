"""`modelopsx compile`: the pipelines as KFP IR YAML, byte-for-byte reproducible from the same code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

TRAINING_GPU = "training_pipeline.yaml"
TRAINING_CPU = "training_pipeline_cpu.yaml"
SWEEP = "sweep_pipeline.yaml"
DEFAULT_OUT = Path("pipelines/compiled")


def pipeline_builders() -> dict[str, Callable[[], Callable[..., Any]]]:
    """File name -> a function building that pipeline (imports KFP lazily)."""
    from pipelines.sweep_pipeline import build_sweep_pipeline
    from pipelines.training_pipeline import build_training_pipeline

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
        written.append(path)
    return written
