"""Importers: convert public pedestrian datasets into the canonical format (see modelopsx/data/format.py).

`import_dataset` is the one entry point: it opens the source (folder, .zip or .tar*, extracted safely), writes
into a staging folder beside `out` and renames it into place, so an import lands whole or not at all and never
touches an `out` that already has content.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelopsx.data.archive import source_folder
from modelopsx.data.format import Dataset
from modelopsx.data.importers.common import DatasetWriter, check_output_dir
from modelopsx.errors import DatasetError, UserError

FORMATS = ("pennfudan", "kitti", "coco", "voc", "tfds")


@dataclass
class ImportResult:
    dataset: Dataset
    warnings: list[str] = field(default_factory=list)
    clipped: int = 0
    dropped: int = 0


def import_dataset(
    src: Path | None,
    fmt: str,
    out: Path,
    *,
    name: str | None = None,
    data_dir: Path | None = None,
    split: str | None = None,
    images_dir: Path | None = None,
    quiet: bool = True,
    source_label: str | None = None,
) -> ImportResult:
    """Import `src` (format `fmt`) into a new canonical dataset at `out`.

    `source_label` (a URL the archive `src` was downloaded from) is recorded as the dataset's source and
    replaces the temporary paths in error messages, which would name nothing the user can find."""
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise DatasetError(f"unknown format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
    out = Path(out)
    check_output_dir(out)
    info: dict[str, Any] = {"format": fmt, "source": source_label or (str(src) if src else None)}
    if fmt == "tfds":
        from modelopsx.data.importers.tfds_import import family_of, import_tfds

        if not name:
            raise DatasetError("--format tfds needs --name", hint="e.g. --name kitti, voc/2007 or coco/2017")
        family_of(name)
        with DatasetWriter(out, info) as writer:
            dataset = import_tfds(name, writer, data_dir=data_dir or src, split=split, quiet=quiet)
        return ImportResult(dataset, writer.warnings, writer.clipped, writer.dropped)
    if src is None:
        raise DatasetError(f"--format {fmt} needs a source folder or archive")
    src = Path(src)
    coco_json = fmt == "coco" and src.suffix.lower() == ".json"
    temporary = [str(src), str(src.parent)]
    try:
        with source_folder(src.parent if coco_json else src) as folder, DatasetWriter(out, info) as writer:
            temporary.insert(0, str(folder))
            dataset = _import_folder(
                fmt, folder, writer, src if coco_json else None, images_dir, split, quiet
            )
    except UserError as exc:
        if source_label:
            _relabel(exc, temporary, source_label)
        raise
    return ImportResult(dataset, writer.warnings, writer.clipped, writer.dropped)


def _import_folder(
    fmt: str,
    folder: Path,
    writer: DatasetWriter,
    coco_json: Path | None,
    images_dir: Path | None,
    split: str | None,
    quiet: bool,
) -> Dataset:
    if fmt == "pennfudan":
        from modelopsx.data.importers.pennfudan import import_pennfudan

        return import_pennfudan(folder, writer, quiet=quiet)
    if fmt == "kitti":
        from modelopsx.data.importers.kitti import import_kitti

        return import_kitti(folder, writer, quiet=quiet)
    if fmt == "coco":
        from modelopsx.data.importers.coco import import_coco

        return import_coco(
            folder, writer, annotation_file=coco_json, images_dir=images_dir, split=split, quiet=quiet
        )
    from modelopsx.data.importers.voc import import_voc

    return import_voc(folder, writer, split=split, quiet=quiet)


def _relabel(exc: UserError, paths: list[str], label: str) -> None:
    """Name `label` instead of the temporary `paths` (longest first) in the error's message and hint."""
    for path in sorted(paths, key=len, reverse=True):
        exc.message = exc.message.replace(path, label)
        if exc.hint:
            exc.hint = exc.hint.replace(path, label)
    exc.args = (exc.message,)


__all__ = ["FORMATS", "ImportResult", "import_dataset"]
