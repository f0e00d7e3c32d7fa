"""The classical reference a first champion must beat: OpenCV's HOG people detector on the same splits.

HOG is scored like any model: its operating threshold is the max-F1 threshold on the validation split, and
its metrics come from the test split at that threshold. Its detections are cached in the store per image,
under `baselines/hog/<sha256 of the image bytes>.json` (put-if-absent, so concurrent runs agree): every
`make run` brings a new dataset version whose splits differ from the last, but only its new images have to go
through HOG. A cached file that cannot be read is recomputed, never trusted.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelopsx.errors import KeyExistsError, NotFoundError
from modelopsx.storage.base import ObjectStore

log = logging.getLogger(__name__)

BASELINE = "hog"
CACHE_PREFIX = f"baselines/{BASELINE}/"

DetectFn = Callable[[Path, int], list[dict[str, Any]]]  # (image file, image id) -> COCO detections


def hog_detect(path: Path, image_id: int) -> list[dict[str, Any]]:
    from modelopsx.model.hog import hog_detect_file

    return hog_detect_file(path, image_id)


def _read_cached(store: ObjectStore, key: str) -> list[dict[str, Any]] | None:
    try:
        cached = json.loads(store.get(key))
    except NotFoundError:
        return None
    except (ValueError, UnicodeDecodeError):
        cached = None
    if isinstance(cached, list) and all(isinstance(d, dict) for d in cached):
        return cached
    log.warning("ignoring the unreadable baseline cache %s", key)
    return None


def cached_detections(
    store: ObjectStore, split_dir: Path, detect: DetectFn = hog_detect
) -> tuple[list[dict[str, Any]], str]:
    """HOG's detections on a split (from the per-image cache where present) and the split's content hash."""
    from modelopsx.data.format import load_dataset
    from modelopsx.data.hashing import dataset_version_hash, file_sha256

    dataset = load_dataset(split_dir)
    detections: list[dict[str, Any]] = []
    for record in dataset.images:
        path = dataset.image_path(record)
        key = f"{CACHE_PREFIX}{file_sha256(path)}.json"
        boxes = _read_cached(store, key)
        if boxes is None:
            boxes = [{k: v for k, v in d.items() if k != "image_id"} for d in detect(path, record.id)]
            # another run may have cached the same image first; HOG's detections are deterministic
            with contextlib.suppress(KeyExistsError):
                store.put_if_absent(key, json.dumps(boxes).encode("utf-8"))
        detections.extend({**box, "image_id": record.id} for box in boxes)
    return detections, dataset_version_hash(split_dir)


def score_baseline(
    store: ObjectStore, val_dir: Path, test_dir: Path, detect: DetectFn = hog_detect
) -> tuple[list[dict[str, Any]], float, dict[str, Any]]:
    """HOG's test detections, its validation threshold, and what to record about it."""
    from modelopsx.evaluation.metrics import choose_score_threshold

    val_detections, val_hash = cached_detections(store, val_dir, detect)
    threshold = float(choose_score_threshold(val_dir, val_detections))
    test_detections, test_hash = cached_detections(store, test_dir, detect)
    info = {
        "baseline": BASELINE,
        "score_threshold": threshold,
        "threshold_from": f"max F1 on the validation split {val_hash[:12]}",
        "test_split_hash": test_hash,
    }
    return test_detections, threshold, info
