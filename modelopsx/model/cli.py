"""`modelopsx train` and `modelopsx predict` (heavy libraries load inside the commands)."""

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
    epochs: int | None = typer.Option(None, "--epochs", min=1),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1),
    learning_rate: float | None = typer.Option(None, "--learning-rate", min=0.0),
    weights: str | None = typer.Option(
        None,
        "--weights",
        help="imagenet (default; random init when offline), a weights file, a MODEL_DIR, "
        "basin://<store>/<key>, or none.",
    ),
    seed: int | None = typer.Option(None, "--seed"),
    alpha: float | None = typer.Option(None, "--alpha", help="MobileNet (v1 or v2) width multiplier."),
    time_limit: float | None = typer.Option(None, "--time-limit", help="Training time budget in seconds."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted training in --out."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Train the pedestrian detector and export it (CPU, or all visible GPUs)."""
    from modelopsx.model.config import TrainConfig, parse_input_size

    if preset not in PRESETS:
        raise ModelError(f"unknown preset {preset!r}", hint=f"choose one of {', '.join(PRESETS)}")
    if backbone == "hog":
        raise ModelError(
            "the HOG baseline is not trainable", hint="use it with `modelopsx predict --backbone hog`"
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


@commands.command("predict")
def predict_command(
    images: list[Path] | None = typer.Argument(None, help="Image files."),
    model: str | None = typer.Option(None, "--model", help="MODEL_DIR from `modelopsx train`, or 'hog'."),
    backbone: str | None = typer.Option(None, "--backbone", help="'hog': OpenCV's HOG people detector."),
    dataset: Path | None = typer.Option(None, "--dataset", help="Predict a whole canonical dataset."),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Images: folder for drawn boxes + detections.json; --dataset: the detections JSON file.",
    ),
    batch_size: int = typer.Option(16, "--batch-size", min=1),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Detect pedestrians in images (boxes drawn) or over a dataset (COCO results for `evaluate`)."""
    if backbone is not None and backbone != "hog":
        raise ModelError(
            f"--backbone {backbone!r} needs a trained model",
            hint="pass --model MODEL_DIR; --backbone only selects the 'hog' baseline",
        )
    source = "hog" if backbone == "hog" else model
    if source is None:
        raise ModelError("no model given", hint="pass --model MODEL_DIR (or --backbone hog)")
    if dataset is None and not images:
        raise ModelError("nothing to predict", hint="pass image files or --dataset DIR")

    from modelopsx.model.predict import predict_dataset, predict_images

    if dataset is not None:
        if out is not None and out.exists():
            raise ModelError(f"{out} already exists", hint="choose another --out file")
        detections = predict_dataset(Path(source), dataset, out_json=out, batch_size=batch_size, quiet=quiet)
        typer.echo(f"{len(detections)} detections" + (f" written to {out}" if out else ""))
        if out is None:
            typer.echo(json.dumps(detections))
        return
    results = predict_images(Path(source), list(images or []), out_dir=out)
    for image in images or []:
        count = sum(1 for r in results if r["file_name"] == image.name)
        typer.echo(f"{image}: {count} pedestrian(s)")
    if out is not None:
        typer.echo(f"detections and drawn images in {out}")
    else:
        typer.echo(json.dumps(results))


CLI = (commands,)
