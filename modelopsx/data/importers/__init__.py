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
from modelopsx.errors import DatasetError

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
) -> ImportResult:
    """Import `src` (format `fmt`) into a new canonical dataset at `out`."""
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise DatasetError(f"unknown format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
    out = Path(out)
    check_output_dir(out)
    info: dict[str, Any] = {"format": fmt, "source": str(src) if src else None}
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
    with source_folder(src.parent if coco_json else src) as folder, DatasetWriter(out, info) as writer:
        if fmt == "pennfudan":
            from modelopsx.data.importers.pennfudan import import_pennfudan

            dataset = import_pennfudan(folder, writer, quiet=quiet)
        elif fmt == "kitti":
            from modelopsx.data.importers.kitti import import_kitti

            dataset = import_kitti(folder, writer, quiet=quiet)
        elif fmt == "coco":
            from modelopsx.data.importers.coco import import_coco

            dataset = import_coco(
                folder,
                writer,
                annotation_file=src if coco_json else None,
                images_dir=images_dir,
                split=split,
                quiet=quiet,
            )
        else:
            from modelopsx.data.importers.voc import import_voc

            dataset = import_voc(folder, writer, split=split, quiet=quiet)
    return ImportResult(dataset, writer.warnings, writer.clipped, writer.dropped)


__all__ = ["FORMATS", "ImportResult", "import_dataset"]
