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


def _resolve_model(model: str | None, quiet: bool) -> str:
    """What --model names, as predict_* take it: "hog", or a local MODEL_DIR (registry versions are fetched
    into the cache first)."""
    from modelopsx.model.predict import is_hog
    from modelopsx.settings import DEFAULT_MODEL_NAME

    if model is not None and (is_hog(model) or Path(model).is_dir()):
        return "hog" if is_hog(model) else model
    from modelopsx.registry.log import Registry
    from modelopsx.registry.model_cache import cached_champion, cached_version, parse_reference
    from modelopsx.registry.store import open_registry_store

    reference = None
    if model is not None:
        reference = parse_reference(model)
        if reference is None:
            raise ModelError(
                f"--model {model}: not a model folder, NAME@vN or hog",
                hint="pass a MODEL_DIR from `modelopsx train`, a registered version such as "
                f"{DEFAULT_MODEL_NAME}@v1, or hog; without --model the registry's champion is used",
            )
    registry = Registry(open_registry_store(None))
    cached = (
        cached_champion(registry, DEFAULT_MODEL_NAME)
        if reference is None
        else cached_version(registry, *reference)
    )
    if not quiet:
        role = " (the champion)" if cached.is_champion else ""
        how = "fetched into" if cached.fetched else "cached in"
        typer.echo(f"model {cached.name}@v{cached.version}{role}, {how} {cached.path}", err=True)
    return str(cached.path)


@commands.command("predict")
def predict_command(
    images: list[Path] | None = typer.Argument(
        None, metavar="IMAGE", help="Image files to detect pedestrians in."
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        help="The model to run: NAME@vN (a registered version, e.g. pedestrian-detector@v2), a MODEL_DIR "
        "from `modelopsx train`, or hog (OpenCV's HOG people detector, the classical baseline). Default: "
        "the registry's champion. Registered versions are fetched once into $MODELOPSX_CACHE_DIR/models.",
    ),
    dataset: Path | None = typer.Option(
        None, "--dataset", help="Predict every image of a canonical dataset folder instead of IMAGE files."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="With images: a folder for the images with boxes drawn and detections.json. With --dataset: "
        "the COCO results file for `modelopsx evaluate`.",
    ),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Images per inference batch."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="No progress bar and no note on which model runs."
    ),
) -> None:
    """Detect pedestrians in images, or over a whole dataset.

    Images: prints the count per image and the detections (JSON), or draws the boxes into --out.
    --dataset: writes COCO results for `modelopsx evaluate`.
    """
    if dataset is None and not images:
        raise ModelError("nothing to predict", hint="pass image files or --dataset DIR")
    if dataset is not None and out is not None and out.exists():
        raise ModelError(f"{out} already exists", hint="choose another --out file")
    source = _resolve_model(model, quiet)

    from modelopsx.model.predict import predict_dataset, predict_images

    if dataset is not None:
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
