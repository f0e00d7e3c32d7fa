"""Small builders for evaluation tests: canonical datasets and COCO results, in memory or on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelopsx.data.format import Box, Dataset, ImageRecord


def box(
    bbox: list[float], *, ignore: int = 0, iscrowd: int = 0, visibility: float = 1.0, height: float = 0.0
) -> dict[str, Any]:
    return {"bbox": bbox, "ignore": ignore, "iscrowd": iscrowd, "visibility": visibility, "height": height}


def dataset(
    images: list[list[dict[str, Any]]], root: Path = Path("unused"), width: int = 640, height: int = 480
) -> Dataset:
    """One entry per image (ids 1..n), each a list of `box(...)` dicts; annotation ids start at 1."""
    records, boxes = [], []
    for index, image_boxes in enumerate(images, start=1):
        records.append(ImageRecord(id=index, file_name=f"img{index:04d}.png", width=width, height=height))
        for spec in image_boxes:
            boxes.append(Box(id=len(boxes) + 1, image_id=index, **spec))
    return Dataset(root=root, images=records, annotations=boxes)


def det(image_id: int, bbox: list[float], score: float) -> dict[str, Any]:
    return {"image_id": image_id, "category_id": 1, "bbox": bbox, "score": score}


def random_case(
    seed: int,
    n_images: int,
    max_boxes: int = 8,
    max_dets: int = 30,
    score_decimals: int | None = None,
    many_dets_image: bool = False,
) -> tuple[Dataset, list[dict[str, Any]]]:
    """Random pedestrians (some crowd, some ignore regions) and detections near them or anywhere.

    Coordinates are rounded to 2 decimals so that the dataset's JSON (3 decimals) holds the same numbers.
    """
    rng = np.random.default_rng(seed)
    images: list[list[dict[str, Any]]] = []
    dets: list[dict[str, Any]] = []
    for image_id in range(1, n_images + 1):
        boxes = []
        for _ in range(int(rng.integers(0, max_boxes + 1))):
            w = float(rng.uniform(5, 80))
            b = [
                round(float(rng.uniform(0, 500)), 2),
                round(float(rng.uniform(0, 300)), 2),
                round(w, 2),
                round(w * float(rng.uniform(1.2, 3.0)), 2),
            ]
            kind = rng.random()
            boxes.append(
                box(
                    b,
                    iscrowd=int(kind < 0.08),
                    ignore=int(0.08 <= kind < 0.16),
                    visibility=round(float(rng.uniform(0.1, 1.0)), 3),
                )
            )
        images.append(boxes)
        n_dets = int(rng.integers(0, max_dets + 1))
        if many_dets_image and image_id == 1:
            n_dets = 130  # beyond COCO's 100 detections per image
        for _ in range(n_dets):
            if boxes and rng.random() < 0.6:
                x, y, w, h = boxes[int(rng.integers(len(boxes)))]["bbox"]
                j = rng.normal(0, 0.12, 4)
                b = [x + j[0] * w, y + j[1] * h, w * float(np.exp(j[2])), h * float(np.exp(j[3]))]
            else:
                w = float(rng.uniform(5, 80))
                h = w * float(rng.uniform(1.2, 3.0))
                b = [float(rng.uniform(0, 500)), float(rng.uniform(0, 300)), w, h]
            score = float(rng.random())
            if score_decimals is not None:
                score = round(score, score_decimals)
            dets.append(det(image_id, [round(v, 2) for v in b], score))
    return dataset(images), dets


def write_images(ds: Dataset, root: Path) -> Dataset:
    """Give `ds` real image files (plain grey PNGs) under root/images and save its annotations."""
    import cv2

    ds.root = root
    ds.images_dir.mkdir(parents=True, exist_ok=True)
    for record in ds.images:
        pixels = np.full((record.height, record.width, 3), 128, dtype=np.uint8)
        cv2.imwrite(str(ds.image_path(record)), pixels)
    ds.save()
    return ds
