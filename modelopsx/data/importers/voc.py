"""Pascal VOC: `Annotations/*.xml` + `JPEGImages/` (optionally `ImageSets/Main/<split>.txt`).

Only `person` objects are kept; `difficult=1` becomes an ignore box; `truncated` is kept as truncation
(0 or 1) and `occluded=1` (VOC2010+) lowers visibility to 0.65; a flag other than 0 or 1 is an error. VOC
pixel coordinates are 1-based and inclusive, so x = xmin - 1 and w = xmax - xmin + 1. ImageSets entries
follow the dataset path rule (modelopsx.data.paths).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

from modelopsx.data.archive import descend_single_folder
from modelopsx.data.format import Dataset
from modelopsx.data.importers.common import DatasetWriter, progress
from modelopsx.data.paths import resolve_inside
from modelopsx.errors import DatasetError


def _text(node: ET.Element | None, tag: str, default: str = "") -> str:
    found = node.find(tag) if node is not None else None
    return (found.text or "").strip() if found is not None and found.text is not None else default


def _number(node: ET.Element | None, tag: str, where: str) -> float:
    value = _text(node, tag)
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise DatasetError(f"{where}: <{tag}> is {value!r}, not a finite number", hint="fix this object")
    return number


_FLAGS = {"0": False, "1": True, "false": False, "true": True}


def _flag(node: ET.Element, tag: str, where: str) -> bool:
    """A VOC 0/1 flag; anything else is an error, never a quiet 0 (a difficult box would count as a miss)."""
    value = _text(node, tag, "0")
    if value.lower() not in _FLAGS:
        raise DatasetError(
            f"{where}: <{tag}> is {value!r}; expected 0 or 1",
            hint=f"write <{tag}>1</{tag}> or <{tag}>0</{tag}>",
        )
    return _FLAGS[value.lower()]


def import_voc(folder: Path, writer: DatasetWriter, split: str | None = None, quiet: bool = True) -> Dataset:
    root = descend_single_folder(folder, ("Annotations", "JPEGImages"))
    if root is None:
        raise DatasetError(
            f"{folder}: no Pascal VOC layout found (Annotations/ and JPEGImages/)",
            hint="pass VOCdevkit/VOC2007 (or the folder/archive that holds it)",
        )
    if split:
        listing = root / "ImageSets" / "Main" / f"{split}.txt"
        if not listing.is_file():
            raise DatasetError(
                f"{listing}: no image list for split {split!r}",
                hint="use a split listed in ImageSets/Main (train, val, trainval, test)",
            )
        xml_files = [
            # an entry is an image id, data like a file name: the one path rule keeps it inside Annotations/
            resolve_inside(root / "Annotations", f"{line.split()[0]}.xml", f"{listing}:{line_no}")
            for line_no, line in enumerate(listing.read_text().splitlines(), start=1)
            if line.strip()
        ]
    else:
        xml_files = sorted((root / "Annotations").glob("*.xml"))
    if not xml_files:
        raise DatasetError(
            f"{root / 'Annotations'}: no .xml annotation files", hint="check the source folder"
        )
    for xml_path in progress(xml_files, len(xml_files), "VOC", quiet):
        try:
            tree = ET.parse(xml_path)
        except FileNotFoundError:
            raise DatasetError(f"{xml_path}: annotation file missing") from None
        except ET.ParseError as exc:
            raise DatasetError(f"{xml_path}: not valid XML ({exc})", hint="fix or remove this file") from None
        ann = tree.getroot()
        file_name = _text(ann, "filename") or f"{xml_path.stem}.jpg"
        size = ann.find("size")
        declared = None
        if size is not None and _text(size, "width"):
            where = str(xml_path)
            declared = (int(_number(size, "width", where)), int(_number(size, "height", where)))
        src = resolve_inside(root / "JPEGImages", file_name, f"{xml_path}: <filename>")
        image = writer.add_image_file(src, group=Path(file_name).stem, declared_size=declared)
        for index, obj in enumerate(ann.findall("object")):
            if _text(obj, "name").lower() != "person":
                continue
            where = f"{xml_path.name}: object[{index}]"
            bnd = obj.find("bndbox")
            if bnd is None:
                raise DatasetError(f"{where}: person without <bndbox>", hint="fix this object")
            xmin, ymin = _number(bnd, "xmin", where), _number(bnd, "ymin", where)
            xmax, ymax = _number(bnd, "xmax", where), _number(bnd, "ymax", where)
            writer.add_box(
                image,
                xmin - 1,
                ymin - 1,
                xmax - xmin + 1,
                ymax - ymin + 1,
                ignore=int(_flag(obj, "difficult", where)),
                visibility=0.65 if _flag(obj, "occluded", where) else 1.0,
                truncation=1.0 if _flag(obj, "truncated", where) else 0.0,
                where=where,
            )
    return writer.commit()
