"""Penn-Fudan pedestrians: PNGImages/, PedMasks/, Annotation/*.txt (PASCAL annotation v1.00 text).

Boxes are written as `(Xmin, Ymin) - (Xmax, Ymax) : (160, 182) - (302, 431)`, 1-based and inclusive, so the
0-based `[x, y, w, h]` is `[Xmin - 1, Ymin - 1, Xmax - Xmin + 1, Ymax - Ymin + 1]`.

Every Penn-Fudan image shows at least one pedestrian, so an annotation file with no parsable box is not a
person-free image but a broken file: the import stops with an error naming it (nothing is written).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from modelopsx.data.archive import descend_single_folder
from modelopsx.data.format import Dataset
from modelopsx.data.importers.common import DatasetWriter, progress
from modelopsx.data.paths import resolve_inside
from modelopsx.errors import DatasetError

_BOX = re.compile(
    r"^Bounding box for object (\d+)[^:]*:\s*\(\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\)\s*-\s*"
    r"\(\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\)",
    re.IGNORECASE,
)
_SIZE = re.compile(r"^Image size \(X x Y x C\)\s*:\s*(\d+)\s*x\s*(\d+)", re.IGNORECASE)
_FILENAME = re.compile(r'^Image filename\s*:\s*"([^"]+)"', re.IGNORECASE)


def parse_annotation(path: Path) -> dict[str, Any]:
    """Parse one annotation file into {"filename", "size", "boxes": [(x, y, w, h, line_no)]} (0-based)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror})") from None
    filename: str | None = None
    size: tuple[int, int] | None = None
    boxes: list[tuple[float, float, float, float, int]] = []
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if m := _FILENAME.match(line):
            filename = m.group(1)
        elif m := _SIZE.match(line):
            size = (int(m.group(1)), int(m.group(2)))
        elif m := _BOX.match(line):
            x1, y1, x2, y2 = (float(v) for v in m.groups()[1:])
            if x2 < x1 or y2 < y1:
                raise DatasetError(
                    f"{path}:{line_no}: box ({x1:g}, {y1:g}) - ({x2:g}, {y2:g}) has "
                    "Xmax < Xmin or Ymax < Ymin",
                    hint="fix the corners of this box",
                )
            boxes.append((x1 - 1, y1 - 1, x2 - x1 + 1, y2 - y1 + 1, line_no))
        elif line.lower().startswith("bounding box"):
            raise DatasetError(
                f"{path}:{line_no}: cannot parse the bounding box line {line!r}",
                hint='expected "... (Xmin, Ymin) - (Xmax, Ymax) : (x1, y1) - (x2, y2)"',
            )
    if not boxes:
        raise DatasetError(
            f"{path}: no 'Bounding box for object N' line; every Penn-Fudan image shows a "
            "pedestrian, so this annotation is broken",
            hint="restore the file from the original PennFudanPed release, or remove it "
            "and its image from the source",
        )
    return {"filename": filename, "size": size, "boxes": boxes}


def find_root(folder: Path) -> Path:
    root = descend_single_folder(folder, ("PNGImages", "Annotation"))
    if root is None:
        raise DatasetError(
            f"{folder}: no Penn-Fudan layout found (PNGImages/ and Annotation/)",
            hint="pass the PennFudanPed folder or its zip",
        )
    return root


def import_pennfudan(folder: Path, writer: DatasetWriter, quiet: bool = True) -> Dataset:
    root = find_root(folder)
    annotations = sorted((root / "Annotation").glob("*.txt"))
    if not annotations:
        raise DatasetError(f"{root / 'Annotation'}: no .txt annotation files", hint="check the source folder")
    for ann_path in progress(annotations, len(annotations), "Penn-Fudan", quiet):
        parsed = parse_annotation(ann_path)
        name = Path(parsed["filename"]).name if parsed["filename"] else ann_path.stem + ".png"
        image_path = resolve_inside(root / "PNGImages", name, f"{ann_path}: Image filename")
        if not image_path.is_file():
            image_path = root / "PNGImages" / (ann_path.stem + ".png")
        image = writer.add_image_file(image_path, group=image_path.stem, declared_size=parsed["size"])
        for x, y, w, h, line_no in parsed["boxes"]:
            writer.add_box(image, x, y, w, h, where=f"{ann_path.name}:{line_no}")
    return writer.commit()
