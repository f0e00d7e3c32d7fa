"""Target encoding rules shared by the tf.data encoder (targets.py) and a numpy reference (no TensorFlow).

Per output cell the target has 8 channels:
  0 heatmap: max over pedestrians of an elliptical Gaussian around the center cell (1.0 exactly at it)
  1 loss weight: 0 inside ignore regions / crowds (except at a pedestrian's own center), else 1
  2-3 log box width and height in output cells, 4-5 offset from the cell to the box center (x, y)
  6 center mask: 1 at pedestrian center cells (the focal loss's positives and its normalisation)
  7 regression weight: dense over each pedestrian's Gaussian area (TTFNet), the Gaussian normalised to sum
    to 1 per pedestrian, so every pedestrian counts once but the size is learnt from many cells at once
    (far faster convergence than regressing at the center cell only).
A cell inside several Gaussians regresses the pedestrian whose Gaussian is highest there; at a shared
center cell the smaller pedestrian wins (the larger one is usually centered elsewhere).
"""

from __future__ import annotations

import numpy as np

TARGET_CHANNELS = 8
GAUSSIAN_ALPHA = 0.54  # sigma = alpha * size / 6 (TTFNet): elliptical, follows the box shape
MIN_SIGMA = 0.5
MIN_BOX_PIXELS = 2.0  # boxes thinner than this after clipping carry no usable center
REGRESSION_MIN_GAUSSIAN = 0.05  # cells below this Gaussian value of their pedestrian carry no regression
PEDESTRIAN, IGNORE = 1, -1


def encode_targets_numpy(
    boxes: np.ndarray, labels: np.ndarray, image_size: tuple[int, int], stride: int
) -> np.ndarray:
    """Reference encoder for one image.

    boxes [M, 4] (x1, y1, x2, y2 input pixels), labels [M] -> [Ho, Wo, 8]."""
    height, width = image_size
    out_h, out_w = height // stride, width // stride
    target = np.zeros((out_h, out_w, TARGET_CHANNELS), np.float32)
    ys, xs = np.mgrid[0:out_h, 0:out_w].astype(np.float32)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    labels = np.asarray(labels).reshape(-1)
    clipped = np.stack(
        [
            np.clip(boxes[:, 0], 0, width),
            np.clip(boxes[:, 1], 0, height),
            np.clip(boxes[:, 2], 0, width),
            np.clip(boxes[:, 3], 0, height),
        ],
        axis=1,
    )
    w = clipped[:, 2] - clipped[:, 0]
    h = clipped[:, 3] - clipped[:, 1]
    ignore = np.zeros((out_h, out_w), bool)
    gaussians, priorities, values, centers = [], [], [], []
    for i, label in enumerate(labels):
        if label == IGNORE:
            x1, y1, x2, y2 = boxes[i]
            cx, cy = (xs + 0.5) * stride, (ys + 0.5) * stride
            ignore |= (cx >= x1) & (cx <= x2) & (cy >= y1) & (cy <= y2)
            continue
        if label != PEDESTRIAN or w[i] < MIN_BOX_PIXELS or h[i] < MIN_BOX_PIXELS:
            continue
        center_x = (clipped[i, 0] + clipped[i, 2]) / 2 / stride
        center_y = (clipped[i, 1] + clipped[i, 3]) / 2 / stride
        cix = min(int(np.floor(center_x)), out_w - 1)
        ciy = min(int(np.floor(center_y)), out_h - 1)
        sx = max(GAUSSIAN_ALPHA * w[i] / stride / 6, MIN_SIGMA)
        sy = max(GAUSSIAN_ALPHA * h[i] / stride / 6, MIN_SIGMA)
        gauss = np.exp(-((xs - cix) ** 2 / (2 * sx * sx) + (ys - ciy) ** 2 / (2 * sy * sy)))
        gauss = gauss.astype(np.float32)
        gaussians.append(gauss)
        priorities.append(np.where(gauss >= REGRESSION_MIN_GAUSSIAN, gauss + 1e-3 / (w[i] * h[i] + 1.0), 0.0))
        values.append((np.log(w[i] / stride), np.log(h[i] / stride), center_x, center_y))
        centers.append((ciy, cix))
        target[..., 0] = np.maximum(target[..., 0], gauss)
        target[ciy, cix, 6] = 1.0
    if gaussians:
        priority = np.stack(priorities)
        owner = np.argmax(priority, axis=0)
        owned = priority.max(axis=0) > 0
        for k, gauss in enumerate(gaussians):
            mine = owned & (owner == k)
            if not mine.any():
                continue
            log_w, log_h, center_x, center_y = values[k]
            target[mine, 2] = log_w
            target[mine, 3] = log_h
            target[mine, 4] = center_x - xs[mine]
            target[mine, 5] = center_y - ys[mine]
            target[mine, 7] = gauss[mine] / gauss[mine].sum()
    target[..., 1] = np.where(ignore & (target[..., 6] == 0), 0.0, 1.0)
    return target
