"""Load and validate ground truth and detections, then flatten them into numpy arrays.

Every metric works on these arrays, never on per-box Python objects, so evaluation stays fast on large sets.
Images are indexed by their position in `GroundTruthArrays.image_ids` (sorted ascending, as pycocotools does).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from modelopsx.data.format import (
    PEDESTRIAN_ID,
    Dataset,
    read_annotations,
)
from modelopsx.evaluation.arrays import (  # noqa: F401 - the loaders' public types live there
    DetectionArrays,
    DetectionsError,
    GroundTruthArrays,
    check_ground_truth,
    ground_truth_arrays,
    load_ground_truth,
)


def load_ground_truth_arrays(gt: Dataset | Path | str) -> GroundTruthArrays:
    """GroundTruthArrays of a Dataset, a dataset directory or an annotations file; files are read straight
    into arrays (no Dataset, no object per box)."""
    if isinstance(gt, Dataset):
        return ground_truth_arrays(gt)
    from modelopsx.evaluation.json_arrays import (
        annotations_path,
        ground_truth_from_bytes,
        ground_truth_from_json,
        parse_json,
    )

    path = annotations_path(gt)
    if not path.is_file():
        read_annotations(path)  # raises the usual "not found" error
    try:
        raw = path.read_bytes()
        fast = ground_truth_from_bytes(raw, path)
        if fast is not None:
            return fast
        data = parse_json(raw)
    except (ValueError, OSError):
        # NaN, which JSON has not and the schema then names, or a real problem the reader reports
        data = read_annotations(path)
    return ground_truth_from_json(data, path)


def load_detections(detections: list[dict[str, Any]] | Path | str) -> list[dict[str, Any]]:
    """Read COCO results (a JSON list; `[]` is no detections)."""
    if isinstance(detections, list):
        return detections
    path = Path(detections)
    data = _parse_detections(path, _read_detections(path))
    if not isinstance(data, list):
        raise DetectionsError(
            f"{path}: expected a JSON list of detections, got {type(data).__name__}",
            hint='COCO results format: [{"image_id", "category_id", "bbox", "score"}, ...]',
        )
    return data


def load_detection_arrays(
    detections: list[dict[str, Any]] | Path | str, gt: GroundTruthArrays, drop_unknown_images: bool = False
) -> DetectionArrays:
    """`detection_arrays` of COCO results given as a list or a file; a well-formed file goes straight into
    arrays (no dict per detection), anything else through `load_detections`, which names what is wrong."""
    if isinstance(detections, list):
        return detection_arrays(detections, gt, drop_unknown_images)
    from modelopsx.evaluation.json_arrays import detections_from_bytes

    path = Path(detections)
    raw = _read_detections(path)
    fast = detections_from_bytes(raw)
    if fast is None:
        return detection_arrays(load_detections(path), gt, drop_unknown_images)
    del raw
    image_ids, boxes, scores, dropped = fast
    return _index_detections(image_ids, boxes, scores, dropped, gt, drop_unknown_images)


def _read_detections(path: Path) -> bytes:
    """The file's bytes. An empty file is an error, not "no detections": it is what a predict that failed
    or was cut off leaves, and scoring it would silently rate a broken model."""
    if not path.is_file():
        raise DetectionsError(
            f"{path}: detections file not found",
            hint="pass the JSON written by `modelopsx predict` (COCO results format)",
        )
    raw = path.read_bytes()
    if not raw.strip():
        raise DetectionsError(
            f"{path}: the detections file is empty ({len(raw)} bytes); a predict that "
            "failed or was interrupted leaves such a file",
            hint="re-run `modelopsx predict`; a model that finds nothing writes [] instead",
        )
    return raw


def _parse_detections(path: Path, raw: bytes) -> Any:
    from modelopsx.evaluation.json_arrays import parse_json

    try:
        return parse_json(raw)
    except ValueError:  # msgspec.DecodeError
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DetectionsError(
                f"{path}: not a text file", hint="expected a JSON list of COCO results"
            ) from None
        return _parse_with_json(path, text)  # NaN or Infinity, which JSON has not: named per entry later


def _parse_with_json(path: Path, text: str) -> Any:
    """The standard library's parse of a file the fast parser refused, or its message (line and column)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DetectionsError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            hint='expected a JSON list of COCO results [{"image_id", "category_id", "bbox", "score"}, ...]',
        ) from None


def _entry_problem(index: int, entry: Any) -> str | None:
    """Say what is wrong with one detection, or None; the slow path behind a failed bulk conversion."""
    if not isinstance(entry, dict):
        return f"detections[{index}] is not an object"
    for key in ("image_id", "bbox", "score"):
        if key not in entry:
            return f"detections[{index}] has no '{key}'"
    image_id = entry["image_id"]
    if isinstance(image_id, bool) or not isinstance(image_id, int | float) or image_id != int(image_id):
        return f"detections[{index}]: image_id {image_id!r} is not an integer"
    bbox = entry["bbox"]
    if (
        not isinstance(bbox, list | tuple)
        or len(bbox) != 4
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in bbox)
    ):
        return f"detections[{index}]: bbox {bbox!r} is not 4 numbers"
    if not all(math.isfinite(v) for v in bbox):
        return f"detections[{index}]: bbox {list(bbox)} is not finite (NaN or inf)"
    if bbox[2] < 0 or bbox[3] < 0:
        return f"detections[{index}]: bbox {list(bbox)} has a negative width or height"
    score = entry["score"]
    if isinstance(score, bool) or not isinstance(score, int | float):
        return f"detections[{index}]: score {score!r} is not a number"
    if not math.isfinite(score):
        return f"detections[{index}]: score is {score}"
    if score < 0:
        return f"detections[{index}]: score {score} is negative"
    return None


def _raise_first_problem(entries: list[Any], indices: Iterable[int]) -> None:
    for index in indices:
        problem = _entry_problem(int(index), entries[int(index)])
        if problem:
            raise DetectionsError(
                problem,
                hint="each detection is {'image_id': int, 'category_id': 1, "
                "'bbox': [x, y, w, h] (w, h >= 0), 'score': finite >= 0}",
            )


def detection_arrays(
    detections: list[dict[str, Any]], gt: GroundTruthArrays, drop_unknown_images: bool = False
) -> DetectionArrays:
    """Validate COCO results against the ground truth's images and flatten them.

    Entries whose category_id is not the pedestrian id are dropped (as pycocotools does) and counted.
    Detections on images the ground truth does not list are an error, or with `drop_unknown_images`
    dropped with a warning (and counted).
    """
    from modelopsx.evaluation.json_arrays import detections_from_list

    fast = detections_from_list(detections)
    if fast is not None:
        image_ids, boxes, scores, dropped = fast
        return _index_detections(image_ids, boxes, scores, dropped, gt, drop_unknown_images)
    try:
        keep = [d for d in detections if d.get("category_id", PEDESTRIAN_ID) == PEDESTRIAN_ID]
        image_ids = np.array([d["image_id"] for d in keep])
        boxes = np.array([d["bbox"] for d in keep], dtype=np.float64).reshape(-1, 4)
        scores = np.array([d["score"] for d in keep], dtype=np.float64)
    except (AttributeError, KeyError, TypeError, ValueError):
        _raise_first_problem(detections, range(len(detections)))
        raise  # unreachable: the slow path names the bad entry
    dropped = len(detections) - len(keep)
    if image_ids.size and image_ids.dtype.kind not in "iu":
        _raise_first_problem(detections, _caller_indices(detections, keep, range(len(keep))))
    # numpy takes true for 1: a JSON boolean is no id, coordinate or score
    types = ({type(d["image_id"]), type(d["score"]), *map(type, d["bbox"])} for d in keep)
    booleans = np.fromiter((bool in t for t in types), dtype=bool, count=len(keep))
    bad = (
        booleans
        | ~np.isfinite(boxes).all(axis=1)
        | (boxes[:, 2] < 0)
        | (boxes[:, 3] < 0)
        | ~np.isfinite(scores)
        | (scores < 0)
    )
    if bad.any():
        _raise_first_problem(detections, _caller_indices(detections, keep, np.flatnonzero(bad)[:1]))
    image_ids = image_ids.astype(np.int64).reshape(-1)
    return _index_detections(image_ids, boxes, scores, dropped, gt, drop_unknown_images)


def _caller_indices(detections: list[Any], keep: list[Any], positions: Iterable[int]) -> list[int]:
    """Positions in the filtered list `keep` as indices in the caller's list, for the message."""
    where = {id(d): i for i, d in enumerate(detections)}
    return [where[id(keep[int(p)])] for p in positions]


def _index_detections(
    image_ids: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    dropped: int,
    gt: GroundTruthArrays,
    drop_unknown_images: bool,
) -> DetectionArrays:
    index = np.searchsorted(gt.image_ids, image_ids)
    known = index < gt.n_images
    known[known] = gt.image_ids[index[known]] == image_ids[known]
    n_unknown = int((~known).sum())
    if n_unknown:
        unknown = sorted(set(image_ids[~known].tolist()))
        message = (
            f"{n_unknown} detection(s) name {len(unknown)} image id(s) that are not in the ground "
            f"truth, e.g. {unknown[:5]}"
        )
        if not drop_unknown_images:
            raise DetectionsError(
                message,
                hint="use the annotations of the split the detections were "
                "predicted on, or pass --drop-unknown-images",
            )
        warnings.warn(f"{message}; dropping them", UserWarning, stacklevel=2)
        index, boxes, scores = index[known], boxes[known], scores[known]
    return DetectionArrays(
        image=index.astype(np.int64),
        boxes=boxes,
        scores=scores,
        dropped_other_category=dropped,
        dropped_unknown_image=n_unknown,
    )
