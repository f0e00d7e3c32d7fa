"""The classical reference a first champion must beat: OpenCV's HOG people detector on the same splits.

HOG is scored like any model: its operating threshold is the max-F1 threshold on the validation split, and
its metrics come from the test split at that threshold. Its detections are cached in the store under
`baselines/hog/<split content hash>.json` (put-if-absent, so concurrent runs agree), so each split is run
through HOG once. A cached file that cannot be read is recomputed, never trusted.
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

PredictFn = Callable[[Path, Path], list[dict[str, Any]]]  # (model_dir, dataset_dir) -> COCO detections


def hog_predict(model_dir: Path, dataset_dir: Path) -> list[dict[str, Any]]:
    from modelopsx.model.hog import hog_predict_dataset

    return hog_predict_dataset(Path(dataset_dir), quiet=True)


def cached_detections(
    store: ObjectStore, split_dir: Path, predict: PredictFn = hog_predict
) -> tuple[list[dict[str, Any]], str]:
    """HOG's detections on a split, from the cache when present; returns them and the split's hash."""
    from modelopsx.data.hashing import dataset_version_hash

    split_hash = dataset_version_hash(split_dir)
    key = f"{CACHE_PREFIX}{split_hash}.json"
    try:
        cached = json.loads(store.get(key))
        if isinstance(cached, list) and all(isinstance(d, dict) for d in cached):
            return cached, split_hash
        log.warning("ignoring the unreadable baseline cache %s", key)
    except NotFoundError:
        pass
    except (ValueError, UnicodeDecodeError):
        log.warning("ignoring the unreadable baseline cache %s", key)
    detections = predict(Path(BASELINE), split_dir)
    # Another run may have cached the same split first; HOG's detections are deterministic.
    with contextlib.suppress(KeyExistsError):
        store.put_if_absent(key, json.dumps(detections).encode("utf-8"))
    return detections, split_hash


def score_baseline(
    store: ObjectStore, val_dir: Path, test_dir: Path, predict: PredictFn = hog_predict
) -> tuple[list[dict[str, Any]], float, dict[str, Any]]:
    """HOG's test detections, its validation threshold, and what to record about it."""
    from modelopsx.evaluation.metrics import choose_score_threshold

    val_detections, val_hash = cached_detections(store, val_dir, predict)
    threshold = float(choose_score_threshold(val_dir, val_detections))
    test_detections, test_hash = cached_detections(store, test_dir, predict)
    info = {
        "baseline": BASELINE,
        "score_threshold": threshold,
        "threshold_from": f"max F1 on the validation split {val_hash[:12]}",
        "test_split_hash": test_hash,
    }
    return test_detections, threshold, info
