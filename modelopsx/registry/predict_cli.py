"""`modelopsx predict`: runs a model folder, hog, or a registered version (by default the champion).

It reads the registry, so it sits in the registry layer rather than with `modelopsx train` in modelopsx.model.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from modelopsx.errors import ModelError

commands = typer.Typer()  # top-level commands of this area


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
