"""COCO JSON straight into the evaluation's arrays: orjson, then one C-level pass per field.

Building a `Dataset` (a dataclass per box) or validating each entry with Python checks costs seconds and
hundreds of MB at a million boxes. Here each field is pulled out with `map`/`itemgetter` into a list, its
JSON types are checked as a set (`set(map(type, values))`), and numpy does the rest. The fast path is strict
about JSON types (ids are JSON integers, numbers are ints or floats); whatever it does not accept goes
through the regular path, which either accepts it (e.g. numpy scalars passed in-process) or names the bad
entry, so both paths accept and reject exactly the same inputs.
"""

from __future__ import annotations

from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

from modelopsx.data.format import ANNOTATIONS_FILE, PEDESTRIAN_ID, dataset_from_json
from modelopsx.data.paths import relative_name_problem
from modelopsx.errors import DatasetError

_NUMBER = {int, float}
_FLAGS = {0, 1}  # True and False hash equal to 1 and 0


class _NotFast(Exception):
    """The input needs the regular path (which accepts it or says what is wrong)."""


def read_json_bytes(path: Path) -> Any:
    """Parse a JSON file with orjson; raises orjson.JSONDecodeError (a json.JSONDecodeError) or OSError."""
    import orjson

    return orjson.loads(path.read_bytes())


def annotations_path(gt: Path | str) -> Path:
    path = Path(gt)
    return path / ANNOTATIONS_FILE if path.is_dir() else path


def _present(entries: list[dict[str, Any]], key: str) -> list[Any]:
    return [e[key] for e in entries if key in e]


def _check_types(values: list[Any], allowed: set[type], nullable: bool = False) -> None:
    types = set(map(type, values))
    if nullable:
        types.discard(type(None))
    if not types <= allowed:
        raise _NotFast


def _finite(values: np.ndarray) -> None:
    if not np.isfinite(values).all():
        raise _NotFast


def _boxes(bboxes: list[Any]) -> np.ndarray:
    """[n, 4] float64 from a list of 4-number JSON lists."""
    if not set(map(type, bboxes)) <= {list} or not set(map(len, bboxes)) <= {4}:
        raise _NotFast
    if not set(map(type, chain.from_iterable(bboxes))) <= _NUMBER:
        raise _NotFast
    xywh = np.fromiter(chain.from_iterable(bboxes), dtype=np.float64, count=4 * len(bboxes)).reshape(-1, 4)
    _finite(xywh)
    return xywh


def _plain_name(name: str) -> bool:
    """A name relative_name_problem surely accepts (the rest it judges itself)."""
    if not name.strip() or ".." in name or "\x00" in name:
        return False
    return name[0] not in "/\\" and name[1:2] != ":"


def _check_images(images: list[Any]) -> None:
    """What image_entry_problems checks, a field at a time."""
    if not set(map(type, images)) <= {dict}:
        raise _NotFast
    for key in ("id", "width", "height"):
        _check_types(list(map(itemgetter(key), images)), {int})
    _check_types(_present(images, "group"), {str}, nullable=True)
    names = list(map(itemgetter("file_name"), images))
    _check_types(names, {str})
    if any(relative_name_problem(n) is not None for n in names if not _plain_name(n)):
        raise _NotFast


def ground_truth_from_json(data: Any, source: Path) -> Any:
    """GroundTruthArrays of parsed annotations; the same result (and errors) as building the Dataset."""
    from modelopsx.evaluation.arrays import ground_truth_arrays

    try:
        return _ground_truth_fast(data)
    except (_NotFast, KeyError, TypeError, AttributeError):
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise DatasetError(
                f"{source}: missing the 'images' list",
                hint="expected COCO-style JSON with images, annotations and categories",
            ) from None
        return ground_truth_arrays(dataset_from_json(data, source.parent, source))


def _ground_truth_fast(data: dict[str, Any]) -> Any:
    from modelopsx.evaluation.arrays import GroundTruthArrays, check_ground_truth

    images, anns = data["images"], data.get("annotations", [])
    if not isinstance(images, list) or not isinstance(anns, list) or not set(map(type, anns)) <= {dict}:
        raise _NotFast
    _check_images(images)
    image_ids = np.fromiter(map(itemgetter("id"), images), dtype=np.int64, count=len(images))
    for key in ("id", "image_id"):
        _check_types(list(map(itemgetter(key), anns)), {int})
    _check_types(_present(anns, "category_id"), {int})
    for key in ("iscrowd", "ignore"):
        flags = _present(anns, key)
        _check_types(flags, {int, bool})
        if not set(flags) <= _FLAGS:
            raise _NotFast
    for key in ("visibility", "height", "truncation", "area"):
        values = _present(anns, key)
        _check_types(values, _NUMBER, nullable=key != "visibility")
        _finite(np.array([v for v in values if v is not None], dtype=np.float64))
    boxes = [a for a in anns if a.get("category_id", PEDESTRIAN_ID) == PEDESTRIAN_ID]
    xywh = _boxes(list(map(itemgetter("bbox"), boxes)))
    n = len(boxes)
    box_ids = np.fromiter(map(itemgetter("image_id"), boxes), dtype=np.int64, count=n)
    ignored = np.fromiter((bool(a.get("iscrowd", 0) or a.get("ignore", 0)) for a in boxes), bool, count=n)
    visibility = np.fromiter((a.get("visibility", 1.0) for a in boxes), np.float64, count=n)
    height = np.fromiter((a.get("height") or 0.0 for a in boxes), np.float64, count=n)
    height = np.where(height == 0.0, xywh[:, 3], height)  # Box fills a missing height from the bbox
    image_ids.sort()
    box_image = check_ground_truth(image_ids, box_ids, xywh, lambda i: (boxes[i].get("id"), boxes[i]["bbox"]))
    return GroundTruthArrays(
        image_ids=image_ids,
        box_image=box_image,
        boxes=xywh,
        ignored=ignored,
        visibility=visibility,
        height=height,
    )


def detections_fast(detections: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int] | None:
    """(image ids, boxes, scores, dropped other-category count) of plain JSON detections, or None when
    they need the regular path (other types, missing keys, bad values: it names the entry)."""
    try:
        if not set(map(type, detections)) <= {dict}:
            return None
        categories = [d.get("category_id", PEDESTRIAN_ID) for d in detections]
        _check_types(categories, {int})
        keep = detections
        if set(categories) - {PEDESTRIAN_ID}:
            keep = [d for d, c in zip(detections, categories, strict=True) if c == PEDESTRIAN_ID]
        ids = list(map(itemgetter("image_id"), keep))
        _check_types(ids, {int})
        scores_list = list(map(itemgetter("score"), keep))
        _check_types(scores_list, _NUMBER)
        scores = np.fromiter(scores_list, dtype=np.float64, count=len(keep))
        boxes = _boxes(list(map(itemgetter("bbox"), keep)))
    except (_NotFast, KeyError, TypeError):
        return None
    if (scores < 0).any() or not np.isfinite(scores).all() or (boxes[:, 2:] < 0).any():
        return None
    image_ids = np.fromiter(ids, dtype=np.int64, count=len(ids))
    return image_ids, boxes, scores, len(detections) - len(keep)
