"""Heatmap peaks -> boxes: 3x3 max-pool NMS, top-K, size and offset gathered at each peak (keras.ops)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

ops = keras.ops


LOG_SIZE_RANGE = (-4.0, 6.0)  # clip log sizes (in cells) so an untrained head cannot overflow exp


def cell_box_corners(values: Any) -> tuple[Any, Any, Any, Any]:
    """(log w, log h, offset x, offset y) of a cell -> box corners (x1, y1, x2, y2) in output cells, relative
    to that cell. Training's GIoU loss and inference decode boxes with this one rule."""
    half_w = ops.exp(ops.clip(values[..., 0], *LOG_SIZE_RANGE)) / 2.0
    half_h = ops.exp(ops.clip(values[..., 1], *LOG_SIZE_RANGE)) / 2.0
    return values[..., 2] - half_w, values[..., 3] - half_h, values[..., 2] + half_w, values[..., 3] + half_h


def decode_detections(outputs: Any, stride: int, max_detections: int = 100) -> tuple[Any, Any]:
    """outputs [B, Ho, Wo, 5] -> (boxes [B, K, 4] as x1, y1, x2, y2 in input pixels, scores [B, K]).

    Scores are sorted descending; callers drop those under their floor.
    """
    outputs = ops.cast(outputs, "float32")
    heat = ops.sigmoid(outputs[..., 0:1])
    pooled = ops.max_pool(heat, pool_size=3, strides=1, padding="same")
    peaks = ops.where(ops.equal(heat, pooled), heat, ops.zeros_like(heat))
    shape = ops.shape(outputs)
    width = shape[2]
    flat = ops.reshape(peaks, (shape[0], -1))
    k = min(int(max_detections), int(outputs.shape[1]) * int(outputs.shape[2]))
    scores, index = ops.top_k(flat, k=k)
    regression = ops.reshape(outputs[..., 1:5], (shape[0], -1, 4))
    values = ops.take_along_axis(regression, ops.expand_dims(index, -1), axis=1)  # [B, K, 4]
    cell_y = ops.cast(index // width, "float32")
    cell_x = ops.cast(index % width, "float32")
    x1, y1, x2, y2 = cell_box_corners(values)
    boxes = ops.stack(
        [(cell_x + x1) * stride, (cell_y + y1) * stride, (cell_x + x2) * stride, (cell_y + y2) * stride],
        axis=-1,
    )
    return boxes, scores


def to_original_pixels(
    boxes: np.ndarray, input_size: tuple[int, int], original_size: tuple[float, float]
) -> np.ndarray:
    """Scale boxes from the (stretched) model input back to the original image (height, width) and clip."""
    in_h, in_w = input_size
    orig_h, orig_w = original_size
    scale = np.array([orig_w / in_w, orig_h / in_h, orig_w / in_w, orig_h / in_h], np.float32)
    out = np.asarray(boxes, np.float32) * scale
    out[..., 0::2] = np.clip(out[..., 0::2], 0, orig_w)
    out[..., 1::2] = np.clip(out[..., 1::2], 0, orig_h)
    return out


def coco_results(image_id: int, boxes: np.ndarray, scores: np.ndarray, min_score: float) -> list[dict]:
    """COCO results dicts for one image (boxes in original pixels as x1, y1, x2, y2)."""
    out = []
    for box, score in zip(boxes, scores, strict=True):
        if score < min_score:
            continue
        x1, y1, x2, y2 = (float(v) for v in box)
        if x2 - x1 <= 0 or y2 - y1 <= 0:
            continue
        out.append(
            {
                "image_id": int(image_id),
                "category_id": 1,
                "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                "score": round(float(score), 5),
            }
        )
    return out
