"""COCO JSON straight into the evaluation's arrays, typed by msgspec: no dict per box.

At a million detections, parsing into dicts and then checking each field costs seconds and hundreds of MB.
Here msgspec decodes the file (or converts an in-process list) into small typed structs, checking JSON types
as it goes (ids are JSON integers, numbers are ints or floats, a bbox is exactly four numbers), and numpy
takes the columns. The fast path is strict: whatever it does not accept (another JSON type, a missing key, a
value out of range) returns None and goes through the regular path, which either accepts it (e.g. numpy
scalars passed in-process) or names the bad entry, so both paths accept and reject exactly the same inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from modelopsx.data.format import ANNOTATIONS_FILE, PEDESTRIAN_ID, dataset_from_json
from modelopsx.data.paths import relative_name_problem
from modelopsx.errors import DatasetError
from modelopsx.evaluation.arrays import GroundTruthArrays, check_ground_truth, ground_truth_arrays

_FLAGS = {0, 1}  # True and False hash equal to 1 and 0
_NOT_FAST = (msgspec.ValidationError, msgspec.DecodeError, OverflowError, TypeError, ValueError)

Box = tuple[float, float, float, float]  # JSON ints or floats; exactly four


class _Detection(msgspec.Struct, gc=False):
    image_id: int
    bbox: Box
    score: float
    category_id: int = PEDESTRIAN_ID


class _Image(msgspec.Struct, gc=False):
    id: int
    file_name: str
    width: int
    height: int
    group: str | None = None


class _Annotation(msgspec.Struct, gc=False):
    id: int
    image_id: int
    bbox: Box
    category_id: int = PEDESTRIAN_ID
    iscrowd: int | bool = 0
    ignore: int | bool = 0
    visibility: float = 1.0
    height: float | None = None
    truncation: float | None = None
    area: float | None = None


class _Annotations(msgspec.Struct, gc=False):
    images: list[_Image]
    annotations: list[_Annotation] = []


_DETECTIONS = msgspec.json.Decoder(list[_Detection])
_ANNOTATIONS = msgspec.json.Decoder(_Annotations)
_ANY = msgspec.json.Decoder()


def parse_json(raw: bytes) -> Any:
    """Parse JSON bytes into Python values; raises msgspec.DecodeError (e.g. on NaN, which JSON has not)."""
    return _ANY.decode(raw)


def annotations_path(gt: Path | str) -> Path:
    path = Path(gt)
    return path / ANNOTATIONS_FILE if path.is_dir() else path


def _floats(values: Any, n: int) -> np.ndarray:
    return np.fromiter(values, dtype=np.float64, count=n)


def _all_finite(*arrays: np.ndarray) -> bool:
    return all(bool(np.isfinite(a).all()) for a in arrays)


def _boxes(entries: Sequence[Any]) -> np.ndarray:
    """[n, 4] float64 of the structs' bboxes."""
    return _floats(chain.from_iterable(map(attrgetter("bbox"), entries)), 4 * len(entries)).reshape(-1, 4)


def _ids(entries: Sequence[Any], field: str) -> np.ndarray:
    """int64 column; an id beyond int64 raises OverflowError (the regular path names it)."""
    return np.fromiter(map(attrgetter(field), entries), dtype=np.int64, count=len(entries))


# --- detections ------------------------------------------------------------------------------------------


def detections_from_bytes(raw: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray, int] | None:
    """`detections_from_list` of a COCO results file's bytes, without building a dict per detection."""
    try:
        entries = _DETECTIONS.decode(raw)
    except _NOT_FAST:
        return None
    return _detection_columns(entries)


def detections_from_list(detections: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int] | None:
    """(image ids, boxes, scores, dropped other-category count) of plain JSON detections, or None when
    they need the regular path (other types, missing keys, bad values: it names the entry)."""
    try:
        entries = msgspec.convert(detections, list[_Detection])
    except _NOT_FAST:
        return None
    return _detection_columns(entries)


def _detection_columns(entries: list[_Detection]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int] | None:
    total = len(entries)
    if any(d.category_id != PEDESTRIAN_ID for d in entries):
        entries = [d for d in entries if d.category_id == PEDESTRIAN_ID]
    n = len(entries)
    try:
        image_ids = _ids(entries, "image_id")
    except OverflowError:
        return None
    scores = _floats(map(attrgetter("score"), entries), n)
    boxes = _boxes(entries)
    if not _all_finite(scores, boxes) or (scores < 0).any() or (boxes[:, 2:] < 0).any():
        return None
    return image_ids, boxes, scores, total - n


# --- ground truth ----------------------------------------------------------------------------------------


def ground_truth_from_bytes(raw: bytes, source: Path) -> GroundTruthArrays | None:
    """GroundTruthArrays of an annotations file's bytes, or None when it needs the regular path."""
    try:
        return _ground_truth_columns(_ANNOTATIONS.decode(raw))
    except _NOT_FAST:
        return None


def ground_truth_from_json(data: Any, source: Path) -> GroundTruthArrays:
    """GroundTruthArrays of parsed annotations; the same result (and errors) as building the Dataset."""
    try:
        return _ground_truth_columns(msgspec.convert(data, _Annotations))
    except _NOT_FAST:
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise DatasetError(
                f"{source}: missing the 'images' list",
                hint="expected COCO-style JSON with images, annotations and categories",
            ) from None
        return ground_truth_arrays(dataset_from_json(data, source.parent, source))


def _plain_name(name: str) -> bool:
    """A name relative_name_problem surely accepts (the rest it judges itself)."""
    if not name.strip() or ".." in name or "\x00" in name:
        return False
    return name[0] not in "/\\" and name[1:2] != ":"


def _ground_truth_columns(data: _Annotations) -> GroundTruthArrays:
    """Raises ValueError where the regular path must judge (it accepts or names the entry)."""
    images, anns = data.images, data.annotations
    if any(relative_name_problem(i.file_name) is not None for i in images if not _plain_name(i.file_name)):
        raise ValueError("an image name the regular path names")
    if not {a.iscrowd for a in anns} | {a.ignore for a in anns} <= _FLAGS:
        raise ValueError("a flag other than 0 or 1")
    optional = [
        _floats((v for a in anns if (v := getattr(a, field)) is not None), -1)
        for field in ("height", "truncation", "area")
    ]
    boxes = [a for a in anns if a.category_id == PEDESTRIAN_ID]
    n = len(boxes)
    xywh = _boxes(boxes)
    visibility = _floats(map(attrgetter("visibility"), boxes), n)
    height = _floats((a.height or 0.0 for a in boxes), n)
    all_visibility = _floats(map(attrgetter("visibility"), anns), len(anns))
    if not _all_finite(xywh, all_visibility, *optional) or (xywh[:, 2:] < 0).any():
        raise ValueError("a number that is not finite, or a negative box size")
    height = np.where(height == 0.0, xywh[:, 3], height)  # Box fills a missing height from the bbox
    image_ids = _ids(images, "id")
    image_ids.sort()
    box_ids = _ids(boxes, "image_id")
    box_image = check_ground_truth(image_ids, box_ids, xywh, lambda i: (boxes[i].id, list(boxes[i].bbox)))
    return GroundTruthArrays(
        image_ids=image_ids,
        box_image=box_image,
        boxes=xywh,
        ignored=np.fromiter((bool(a.iscrowd or a.ignore) for a in boxes), dtype=bool, count=n),
        visibility=visibility,
        height=height,
    )
