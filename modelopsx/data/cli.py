"""`modelopsx dataset ...`: import, validate, split, synth, augment, info.

`publish` and `list` belong to the registry (modelopsx.registry.cli, a layer above this one); the top-level
command mounts them in this group. Heavy modules (OpenCV,
TensorFlow Datasets, the synthetic renderer) load inside the commands so `modelopsx --help` stays fast.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from modelopsx.errors import DatasetError

dataset_app = typer.Typer(
    name="dataset", help="Import, validate, split, synthesize and augment datasets.", no_args_is_help=True
)
console = Console()

MAX_ROWS = 50
COUNT_COLUMNS = ["images", "boxes", "pedestrians", "ignore", "person-free images", "groups"]


class ImportFormat(StrEnum):
    pennfudan = "pennfudan"
    kitti = "kitti"
    coco = "coco"
    voc = "voc"
    tfds = "tfds"


def _counts_table(title: str, rows: dict[str, dict[str, Any]], columns: list[str]) -> Table:
    table = Table(title=title)
    table.add_column("")
    for col in columns:
        table.add_column(col, justify="right")
    for name, values in rows.items():
        table.add_row(name, *(str(values.get(col, "")) for col in columns))
    return table


def _dataset_counts(dataset: Any) -> dict[str, int]:
    boxes = dataset.annotations
    with_people = {b.image_id for b in boxes if not (b.ignore or b.iscrowd)}
    return {
        "images": len(dataset.images),
        "boxes": len(boxes),
        "pedestrians": sum(1 for b in boxes if not (b.ignore or b.iscrowd)),
        "ignore": sum(1 for b in boxes if b.ignore or b.iscrowd),
        "person-free images": sum(1 for i in dataset.images if i.id not in with_people),
        "groups": len({i.group for i in dataset.images}),
    }


def _parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise DatasetError(f"--size {text!r} is not WIDTHxHEIGHT", hint="e.g. --size 384x256") from None
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise DatasetError(f"--size {text} is out of range", hint="each side must be 16..8192 pixels")
    return width, height


def _parse_bytes(text: str, option: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)i?B?\s*", text, re.IGNORECASE)
    if match is None or int(match.group(1)) <= 0:
        raise DatasetError(f"{option} {text!r} is not a size", hint="e.g. 500M or 20G (bytes without a unit)")
    return int(match.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[match.group(2).upper()]


@dataset_app.command("import")
def import_command(
    src: str | None = typer.Argument(
        None, help="Folder, .zip or .tar(.gz), or an http(s) URL of an archive (for tfds: optional data dir)."
    ),
    fmt: ImportFormat = typer.Option(..., "--format", "-f", help="Source format."),
    out: Path = typer.Option(..., "--out", "-o", help="New folder for the canonical dataset."),
    name: str | None = typer.Option(None, "--name", help="TFDS dataset: kitti, voc/2007 or coco/2017."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="TFDS data dir (already prepared)."),
    split: str | None = typer.Option(None, "--split", help="TFDS split, COCO file (val2017) or VOC list."),
    images_dir: Path | None = typer.Option(None, "--images-dir", help="COCO images folder (default: found)."),
    sha256: str | None = typer.Option(None, "--sha256", help="For a URL: the archive's expected SHA-256."),
    max_download_size: str = typer.Option(
        "64G", "--max-download-size", help="For a URL: refuse a larger download (bytes, or with K, M or G)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Convert a dataset into the canonical format.

    Penn-Fudan, KITTI, COCO or Pascal VOC (a folder, an archive or a URL), or a prepared TFDS dataset.
    """
    from modelopsx.data.download import is_url, temporary_download
    from modelopsx.data.importers import import_dataset
    from modelopsx.data.importers.common import check_output_dir

    def run(source: Path | None, label: str | None = None) -> Any:
        return import_dataset(
            source,
            fmt.value,
            out,
            name=name,
            data_dir=data_dir,
            split=split,
            images_dir=images_dir,
            quiet=quiet,
            source_label=label,
        )

    if src is not None and is_url(src):
        check_output_dir(out)  # before a long download
        limit = _parse_bytes(max_download_size, "--max-download-size")
        with temporary_download(src, sha256=sha256, quiet=quiet, max_bytes=limit) as archive:
            result = run(archive, label=src)
    else:
        if sha256 is not None:
            raise DatasetError("--sha256 applies to URL sources only", hint="drop --sha256 for a local path")
        result = run(Path(src) if src is not None else None)
    console.print(
        _counts_table(
            f"Imported {fmt.value} -> {out}", {"dataset": _dataset_counts(result.dataset)}, COUNT_COLUMNS
        )
    )
    if result.clipped or result.dropped:
        console.print(f"{result.clipped} box(es) clipped to the image border, {result.dropped} dropped")
    for warning in result.warnings[:20]:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if len(result.warnings) > 20:
        console.print(f"... and {len(result.warnings) - 20} more warnings")


@dataset_app.command("validate")
def validate_command(
    root: Path = typer.Argument(..., help="Canonical dataset folder."),
    quarantine: bool = typer.Option(
        False,
        "--quarantine",
        help="Move broken images and annotations to DIR/quarantine/ and rewrite "
        "annotations.json without them (clips fixable boxes).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Report every problem in a dataset, by file and entry.

    Exits non-zero on errors unless --quarantine handled them.
    """
    from modelopsx.data.validate import validate_dataset
    from modelopsx.data.validation_report import ERROR

    report = validate_dataset(root, quarantine=quarantine, quiet=quiet)
    if report.issues:
        table = Table(title=f"Validation of {root}")
        for col in ("level", "file", "entry", "problem", "resolution"):
            table.add_column(col, overflow="fold")
        for issue in report.issues[:MAX_ROWS]:
            color = "red" if issue.level == ERROR else "yellow"
            table.add_row(
                f"[{color}]{issue.level}[/]", issue.file, issue.entry, issue.message, issue.resolution
            )
        console.print(table)
        if len(report.issues) > MAX_ROWS:
            console.print(f"... and {len(report.issues) - MAX_ROWS} more")
    console.print(
        f"{report.images_checked} images and {report.boxes_checked} boxes checked: "
        f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    )
    if report.quarantine_report is not None:
        console.print(
            f"quarantined {report.quarantined_images} image(s) and "
            f"{report.quarantined_annotations} annotation(s), fixed {report.clipped_boxes} "
            f"box(es); report: {report.quarantine_report}"
        )
    if report.fatal:
        raise DatasetError(
            f"{root}: {report.errors[0]}",
            hint="annotations.json must be COCO-style JSON; restore it from its source",
        )
    if not report.ok:
        raise DatasetError(
            f"{root}: {len(report.errors)} validation error(s), first: {report.errors[0]}",
            hint="fix them, or run with --quarantine to move the broken entries out",
        )


@dataset_app.command("split")
def split_command(
    root: Path = typer.Argument(..., help="Canonical dataset folder."),
    out: Path = typer.Option(..., "--out", "-o", help="New folder for train/, val/, test/ and split.json."),
    val: float = typer.Option(0.15, "--val", help="Fraction of groups for validation, in [0, 1)."),
    test: float = typer.Option(0.15, "--test", help="Fraction of groups for test, in [0, 1)."),
    salt: str = typer.Option("", "--salt", help="Changes the assignment (same salt, same split)."),
) -> None:
    """Split a dataset into train, val and test by group.

    By a stable hash of each image's group: no group spans two splits, and adding images never moves old
    ones.
    """
    from modelopsx.data.split import split_dataset
    from modelopsx.hash_labels import short_hash

    summary = split_dataset(root, out, val=val, test=test, salt=salt)
    rows = {
        name: {**counts, "content hash": short_hash(summary["hashes"][name])}
        for name, counts in summary["counts"].items()
    }
    console.print(
        _counts_table(
            f"Split of {root} -> {out}", rows, ["images", "boxes", "pedestrians", "groups", "content hash"]
        )
    )
    empty = [name for name, counts in summary["counts"].items() if not counts["images"]]
    if empty:
        console.print(
            f"[yellow]warning:[/] empty split(s): {', '.join(empty)} (too few groups for these fractions)"
        )


@dataset_app.command("synth")
def synth_command(
    out: Path = typer.Option(..., "--out", "-o", help="New folder for the synthetic dataset."),
    images: int = typer.Option(..., "--images", "-n", min=1, help="Number of images."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same bytes."),
    size: str = typer.Option("384x256", "--size", help="Image size WIDTHxHEIGHT."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Render synthetic street scenes with pedestrians.

    Procedural scenes with exact boxes, visibility and groups, deterministic by seed.
    """
    from modelopsx.data.importers.common import check_output_dir
    from modelopsx.data.synth import generate_synthetic

    width, height = _parse_size(size)
    check_output_dir(out)
    dataset = generate_synthetic(out, images, seed=seed, size=(width, height), quiet=quiet)
    console.print(
        _counts_table(f"Synthetic dataset -> {out}", {"dataset": _dataset_counts(dataset)}, COUNT_COLUMNS)
    )


@dataset_app.command("augment")
def augment_command(
    root: Path = typer.Argument(..., help="Canonical dataset folder."),
    out: Path = typer.Option(..., "--out", "-o", help="New folder for the augmented dataset."),
    copies: int = typer.Option(..., "--copies", "-k", min=0, help="Augmented copies per image."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same output."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Write box-aware augmented copies of a dataset.

    The output records its source version.
    """
    from modelopsx.data.augment import augment_dataset
    from modelopsx.data.importers.common import check_output_dir

    check_output_dir(out)
    dataset = augment_dataset(root, out, copies=copies, seed=seed, quiet=quiet)
    console.print(
        _counts_table(
            f"Augmented {root} x{copies} -> {out}", {"dataset": _dataset_counts(dataset)}, COUNT_COLUMNS
        )
    )


@dataset_app.command("info")
def info_command(root: Path = typer.Argument(..., help="Canonical dataset folder.")) -> None:
    """Counts and the content hash of a dataset."""
    from modelopsx.data.format import load_dataset
    from modelopsx.data.hashing import dataset_version_hash
    from modelopsx.hash_labels import short_hash

    dataset = load_dataset(root)
    console.print(_counts_table(f"{root}", {"dataset": _dataset_counts(dataset)}, COUNT_COLUMNS))
    console.print(f"content hash: {short_hash(dataset_version_hash(root))}")


CLI = (dataset_app,)
