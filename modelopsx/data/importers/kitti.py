"""KITTI: the object layout (`image_2/*.png` + `label_2/*.txt`, 15 fields a line) and the tracking layout
(`image_02/<seq>/<frame>.png` + `label_02/<seq>.txt`, 17 fields: frame and track id first).

Object line: type, truncated (0..1), occluded (0..3), alpha, bbox left top right bottom (0-based pixels),
dimensions (3), location (3), rotation_y. Mapping:
- Pedestrian -> a box; `truncation` kept; visibility from `occluded`: 0 fully visible -> 1.0,
  1 partly -> 0.65, 2 largely -> 0.35, 3 unknown -> 0.1 (so CityPersons-style visibility buckets work).
- Person_sitting -> an ignore box (a person, but not the class we detect); DontCare -> an ignore *crowd*
  region (it may cover several unlabeled objects).
- Everything else (Car, Cyclist, ...) is skipped.
Group: the sequence id (tracking layout), or for the object layout the recording drive when the devkit's
`mapping/train_mapping.txt` + `train_rand.txt` are in the source (frames of one drive never straddle
splits), else the image stem.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from modelopsx.data.archive import descend_single_folder
from modelopsx.data.format import Dataset, ImageRecord
from modelopsx.data.importers.common import DatasetWriter, progress
from modelopsx.errors import DatasetError

VISIBILITY_FROM_OCCLUDED = {0: 1.0, 1: 0.65, 2: 0.35, 3: 0.1}
OBJECT_FIELDS = 15
TRACKING_FIELDS = 17


@dataclass(frozen=True)
class KittiObject:
    type: str
    truncated: float
    occluded: int
    bbox: tuple[float, float, float, float]  # left, top, right, bottom


# KITTI writes plain ASCII decimals. Python's float() and int() also take "inf", "nan", "1e400" (= inf) and
# digits of other scripts ("٣" is 3), which would import as numbers nobody wrote.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[0-9]+")


def _finite(text: str, name: str, where: str) -> float:
    value = float(text) if _NUMBER.fullmatch(text) else math.nan
    if not math.isfinite(value):
        raise DatasetError(
            f"{where}: {name} is {text!r}, not a finite decimal number", hint="fix or remove this line"
        )
    return value


def frame_number(text: str, where: str) -> int:
    """A frame number as KITTI writes it: ASCII digits only."""
    if not _INTEGER.fullmatch(text):
        raise DatasetError(
            f"{where}: frame {text!r} is not a number of ASCII digits (e.g. 000042)",
            hint="rename the file or fix the line; KITTI frames are numbered 000000, 000001, ...",
        )
    return int(text)


def parse_label_line(fields: list[str], where: str) -> KittiObject:
    """Parse the 15 object fields (already split); DatasetError naming `where` (file:line) if malformed."""
    if len(fields) != OBJECT_FIELDS:
        raise DatasetError(
            f"{where}: expected {OBJECT_FIELDS} fields (type, truncated, occluded, alpha, "
            f"4 bbox, 3 dimensions, 3 location, rotation_y), found {len(fields)}",
            hint="fix or remove this line; KITTI label_2 lines have exactly 15 fields",
        )
    names = ("truncated", "occluded", "alpha", "left", "top", "right", "bottom")
    values = [_finite(text, name, where) for text, name in zip(fields[1:8], names, strict=True)]
    values += [_finite(text, "a 3D field", where) for text in fields[8:15]]
    truncated, occluded = values[0], values[1]
    if occluded != int(occluded):
        raise DatasetError(f"{where}: occluded is {fields[2]!r}, not a whole number", hint="fix this line")
    left, top, right, bottom = values[3:7]
    return KittiObject(fields[0], truncated, int(occluded), (left, top, right, bottom))


def _add_object(writer: DatasetWriter, image: ImageRecord, obj: KittiObject, where: str) -> None:
    kind = obj.type
    left, top, right, bottom = obj.bbox
    w, h = right - left, bottom - top
    if kind == "Pedestrian":
        occluded = obj.occluded
        if occluded not in VISIBILITY_FROM_OCCLUDED:
            raise DatasetError(
                f"{where}: occluded must be 0, 1, 2 or 3, found {occluded}", hint="fix this line"
            )
        writer.add_box(
            image,
            left,
            top,
            w,
            h,
            visibility=VISIBILITY_FROM_OCCLUDED[occluded],
            truncation=min(1.0, max(0.0, obj.truncated)),
            where=where,
        )
    elif kind == "Person_sitting":
        writer.add_box(image, left, top, w, h, ignore=1, where=where, extra={"source_type": kind})
    elif kind == "DontCare":
        writer.add_box(image, left, top, w, h, ignore=1, iscrowd=1, where=where, extra={"source_type": kind})


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror})") from None


def drive_groups(folder: Path) -> dict[str, str]:
    """Image stem -> "kitti-<drive>" from the devkit mapping files, when present (else empty)."""
    mapping = next(iter(sorted(folder.rglob("train_mapping.txt"))), None)
    rand = next(iter(sorted(folder.rglob("train_rand.txt"))), None)
    if mapping is None or rand is None:
        return {}
    drives = [line.split() for line in _read_lines(mapping) if line.strip()]
    try:
        order = [int(v) for v in rand.read_text().replace("\n", ",").split(",") if v.strip()]
        return {f"{k:06d}": f"kitti-{drives[index - 1][1]}" for k, index in enumerate(order)}
    except (ValueError, IndexError):
        raise DatasetError(
            f"{rand}: does not match {mapping}",
            hint="use the files from KITTI's devkit_object/mapping, or remove them",
        ) from None


def _import_object_layout(root: Path, writer: DatasetWriter, quiet: bool, groups: dict[str, str]) -> None:
    images = sorted(p for p in (root / "image_2").iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not images:
        raise DatasetError(f"{root / 'image_2'}: no images", hint="check the source folder")
    for image_path in progress(images, len(images), "KITTI", quiet):
        label_path = root / "label_2" / f"{image_path.stem}.txt"
        if not label_path.is_file():
            raise DatasetError(
                f"{label_path}: label file missing for {image_path.name}",
                hint="the KITTI 'testing' split has no labels; import 'training'",
            )
        objects = []
        for line_no, line in enumerate(_read_lines(label_path), start=1):
            if line.strip():
                objects.append((parse_label_line(line.split(), f"{label_path}:{line_no}"), line_no))
        image = writer.add_image_file(image_path, group=groups.get(image_path.stem, image_path.stem))
        for obj, line_no in objects:
            _add_object(writer, image, obj, f"{label_path.name}:{line_no}")


def _import_tracking_layout(root: Path, writer: DatasetWriter, quiet: bool) -> None:
    label_files = sorted((root / "label_02").glob("*.txt"))
    if not label_files:
        raise DatasetError(f"{root / 'label_02'}: no label files", hint="check the source folder")
    for label_path in progress(label_files, len(label_files), "KITTI tracking", quiet):
        seq = label_path.stem
        by_frame: dict[int, list[tuple[KittiObject, int]]] = {}
        for line_no, line in enumerate(_read_lines(label_path), start=1):
            fields = line.split()
            if not fields:
                continue
            where = f"{label_path}:{line_no}"
            if len(fields) != TRACKING_FIELDS:
                raise DatasetError(
                    f"{where}: expected {TRACKING_FIELDS} fields (frame, track id and the 15 "
                    f"object fields), found {len(fields)}",
                    hint="fix or remove this line",
                )
            frame = frame_number(fields[0], where)
            by_frame.setdefault(frame, []).append((parse_label_line(fields[2:], where), line_no))
        frames_dir = root / "image_02" / seq
        if not frames_dir.is_dir():
            raise DatasetError(f"{frames_dir}: image folder missing for sequence {seq}")
        for image_path in sorted(p for p in frames_dir.iterdir() if p.suffix.lower() in (".png", ".jpg")):
            frame = frame_number(image_path.stem, str(image_path))
            image = writer.add_image_file(
                image_path,
                group=f"kitti-seq-{seq}",
                name=f"{seq}_{image_path.name}",
                extra={"sequence": seq, "frame": frame},
            )
            for obj, line_no in by_frame.get(frame, []):
                _add_object(writer, image, obj, f"{label_path.name}:{line_no}")


def import_kitti(folder: Path, writer: DatasetWriter, quiet: bool = True) -> Dataset:
    root = descend_single_folder(folder, ("image_2", "label_2"))
    if root is not None:
        _import_object_layout(root, writer, quiet, drive_groups(folder))
        return writer.commit()
    root = descend_single_folder(folder, ("image_02", "label_02"))
    if root is not None:
        _import_tracking_layout(root, writer, quiet)
        return writer.commit()
    raise DatasetError(
        f"{folder}: no KITTI layout found (image_2/ + label_2/, or image_02/ + label_02/)",
        hint="pass the KITTI 'training' folder or an archive of it",
    )
