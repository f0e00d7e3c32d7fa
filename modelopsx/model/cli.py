"""`modelopsx train` (heavy libraries load inside the command). `modelopsx predict` runs registered versions
too, so it lives in the registry layer (modelopsx.registry.predict_cli)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from modelopsx.errors import ModelError

PRESETS = ("default", "local")

commands = typer.Typer()  # top-level commands of this area


@commands.command("train")
def train_command(
    data: Path = typer.Option(..., "--data", help="Split folder with train/ and val/."),
    out: Path = typer.Option(..., "--out", help="MODEL_DIR to create."),
    preset: str = typer.Option(
        "default", "--preset", help="default: the CPU default (<=10 min for 2,000 images); local: ~2-3 min."
    ),
    backbone: str | None = typer.Option(
        None, "--backbone", help="mobilenetv2, mobilenet (v1), efficientnetb0 or resnet50."
    ),
    input_size: str | None = typer.Option(None, "--input-size", help="HEIGHTxWIDTH, multiples of 32."),
    epochs: int | None = typer.Option(
        None, "--epochs", min=1, help="Training epochs (default: the preset's)."
    ),
    batch_size: int | None = typer.Option(
        None, "--batch-size", min=1, help="Images per training step (default: the preset's)."
    ),
    learning_rate: float | None = typer.Option(
        None, "--learning-rate", min=0.0, help="Peak learning rate (default: the preset's)."
    ),
    weights: str | None = typer.Option(
        None,
        "--weights",
        help="ssdlite-person (the presets' default: person features converted offline; MobileNetV2 "
        "alpha 1.0 only), imagenet (random init when offline), a weights file, a MODEL_DIR, "
        "basin://<store>/<key>, or none.",
    ),
    seed: int | None = typer.Option(
        None, "--seed", help="Random seed: the same seed and data train the same model."
    ),
    alpha: float | None = typer.Option(None, "--alpha", help="MobileNet (v1 or v2) width multiplier."),
    time_limit: float | None = typer.Option(None, "--time-limit", help="Training time budget in seconds."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted training in --out."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Train the pedestrian detector and export it.

    Runs on the CPU, or on all visible GPUs.
    """
    from modelopsx.model.config import TrainConfig, parse_input_size

    if preset not in PRESETS:
        raise ModelError(f"unknown preset {preset!r}", hint=f"choose one of {', '.join(PRESETS)}")
    if backbone == "hog":
        raise ModelError(
            "the HOG baseline is not trainable", hint="run it with `modelopsx predict --model hog IMAGE...`"
        )
    base = TrainConfig.local_default() if preset == "local" else TrainConfig.cpu_default()
    size = parse_input_size(input_size) if input_size else None
    config = base.replace(
        backbone=backbone,
        input_size=size,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        alpha=alpha,
        time_limit_s=time_limit,
    )
    if weights is not None:
        config.weights = None if weights.lower() in ("none", "random", "") else weights
    config.validate()

    from modelopsx.model.train import train_model

    result = train_model(data, out, config, quiet=quiet, resume=resume)
    metrics = {k: result.val_metrics.get(k) for k in ("ap50", "mr2_reasonable", "precision", "recall")}
    typer.echo(
        json.dumps(
            {
                "model_dir": str(result.model_dir),
                "score_threshold": result.score_threshold,
                "epochs": result.epochs_run,
                "train_seconds": round(result.train_seconds, 1),
                "val": metrics,
            }
        )
    )


CLI = (commands,)
