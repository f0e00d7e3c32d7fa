"""Classical baseline: OpenCV's HOG + linear SVM people detector (Dalal & Triggs), for predict/evaluate only.

Its window is 64x128 pixels with the person about 96 px tall inside, so small images are upscaled first and
the window boxes are tightened to the person. Scores are the SVM margins squashed to (0, 1).
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from modelopsx.data.format import load_dataset

HIT_THRESHOLD = -0.5  # SVM margin floor: keep weak hits so evaluation can sweep thresholds
HOG_THRESHOLD = 0.5  # operating score (margin 0, OpenCV's default)
TARGET_HEIGHT = 640  # upscale so pedestrians of ~40 px reach the window's 96 px
MAX_UPSCALE = 3.0
PYRAMID_SCALE = 1.08
WINDOW_FILL = (0.6, 0.84)  # width and height share of the window the person occupies


@lru_cache(maxsize=1)
def _detector() -> Any:
    import cv2

    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor.getDefaultPeopleDetector())
    return hog


def hog_detect(image: np.ndarray, image_id: int, min_score: float = 0.01) -> list[dict]:
    """COCO results for one BGR image."""
    import cv2

    height = image.shape[0]
    scale = min(max(1.0, TARGET_HEIGHT / float(height)), MAX_UPSCALE)
    work = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR) if scale > 1 else image
    rects, weights = _detector().detectMultiScale(
        work, hitThreshold=HIT_THRESHOLD, winStride=(8, 8), padding=(16, 16), scale=PYRAMID_SCALE
    )
    out = []
    for (x, y, w, h), weight in zip(rects, np.asarray(weights).reshape(-1), strict=False):
        score = 1.0 / (1.0 + math.exp(-float(weight)))
        if score < min_score:
            continue
        fill_w, fill_h = WINDOW_FILL
        bw, bh = w * fill_w / scale, h * fill_h / scale
        cx, cy = (x + w / 2) / scale, (y + h / 2) / scale
        out.append(
            {
                "image_id": int(image_id),
                "category_id": 1,
                "bbox": [round(cx - bw / 2, 2), round(cy - bh / 2, 2), round(bw, 2), round(bh, 2)],
                "score": round(score, 5),
            }
        )
    return out


def hog_detect_file(path: Path, image_id: int) -> list[dict]:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return [] if image is None else hog_detect(image, image_id)


def hog_predict_dataset(dataset_dir: Path, quiet: bool = True) -> list[dict]:
    from tqdm import tqdm

    dataset = load_dataset(dataset_dir)
    results: list[dict] = []
    for record in tqdm(dataset.images, disable=quiet, desc="hog", unit="img"):
        results.extend(hog_detect_file(dataset.image_path(record), record.id))
    return results
