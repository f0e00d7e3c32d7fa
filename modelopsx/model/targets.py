"""CenterNet targets in TensorFlow ops, applied inside the tf.data map on build_input_pipeline's batches.

Same rules as the numpy reference in heatmap.py (tested to agree).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tensorflow as tf

from modelopsx.model.heatmap import (
    GAUSSIAN_ALPHA,
    IGNORE,
    MIN_BOX_PIXELS,
    MIN_SIGMA,
    PEDESTRIAN,
    REGRESSION_MIN_GAUSSIAN,
    TARGET_CHANNELS,
)


def encode_batch(boxes: tf.Tensor, labels: tf.Tensor, image_size: tuple[int, int], stride: int) -> tf.Tensor:
    """boxes [B, M, 4] (x1, y1, x2, y2 input pixels), labels [B, M] -> targets [B, H/s, W/s, 8]."""
    height, width = image_size
    out_h, out_w = height // stride, width // stride
    boxes = tf.cast(boxes, tf.float32)
    labels = tf.cast(labels, tf.int32)
    # Every map below is [B, M, H/s, W/s]: drop the padding slots after the batch's last real box (most scenes
    # hold a few pedestrians, M is 64), which cuts the encoder's work several times at the same result.
    slot = tf.range(1, tf.shape(labels)[1] + 1)[None, :]
    used = tf.maximum(tf.reduce_max(tf.where(labels != 0, slot, 0)), 1)
    boxes, labels = boxes[:, :used], labels[:, :used]
    x1 = tf.clip_by_value(boxes[..., 0], 0.0, float(width))
    y1 = tf.clip_by_value(boxes[..., 1], 0.0, float(height))
    x2 = tf.clip_by_value(boxes[..., 2], 0.0, float(width))
    y2 = tf.clip_by_value(boxes[..., 3], 0.0, float(height))
    w, h = x2 - x1, y2 - y1
    valid = (labels == PEDESTRIAN) & (w >= MIN_BOX_PIXELS) & (h >= MIN_BOX_PIXELS)  # [B, M]

    center_x = (x1 + x2) / 2.0 / stride
    center_y = (y1 + y2) / 2.0 / stride
    cix = tf.minimum(tf.floor(center_x), float(out_w - 1))
    ciy = tf.minimum(tf.floor(center_y), float(out_h - 1))
    sx = tf.maximum(GAUSSIAN_ALPHA * w / stride / 6.0, MIN_SIGMA)
    sy = tf.maximum(GAUSSIAN_ALPHA * h / stride / 6.0, MIN_SIGMA)

    xs = tf.range(out_w, dtype=tf.float32)[None, None, None, :]  # [1, 1, 1, Wo]
    ys = tf.range(out_h, dtype=tf.float32)[None, None, :, None]  # [1, 1, Ho, 1]

    def per_box(t: tf.Tensor) -> tf.Tensor:
        return t[:, :, None, None]

    dx2 = tf.square(xs - per_box(cix)) / (2.0 * tf.square(per_box(sx)))
    dy2 = tf.square(ys - per_box(ciy)) / (2.0 * tf.square(per_box(sy)))
    gauss = tf.exp(-(dx2 + dy2)) * tf.cast(per_box(valid), tf.float32)  # [B, M, Ho, Wo]
    heat = tf.reduce_max(gauss, axis=1)  # [B, Ho, Wo]

    # Dense regression (TTFNet): each cell inside a pedestrian's Gaussian regresses the pedestrian whose
    # Gaussian is highest there (the smaller one at a shared center), weighted by that Gaussian normalised
    # to sum to 1 per pedestrian.
    is_center = (tf.equal(xs, per_box(cix)) & tf.equal(ys, per_box(ciy))) & per_box(valid)
    reg_mask = tf.reduce_any(is_center, axis=1)
    priority = tf.where(gauss >= REGRESSION_MIN_GAUSSIAN, gauss + 1e-3 / (per_box(w * h) + 1.0), 0.0)
    owner = tf.argmax(priority, axis=1, output_type=tf.int32)  # [B, Ho, Wo]
    owned = tf.reduce_max(priority, axis=1) > 0.0
    mine = tf.one_hot(owner, tf.shape(boxes)[1], axis=1) * tf.cast(owned, tf.float32)[:, None]  # [B,M,Ho,Wo]
    mass = tf.reduce_sum(mine * gauss, axis=(2, 3), keepdims=True)
    reg_weight = tf.reduce_sum(mine * gauss / tf.maximum(mass, 1e-12), axis=1)  # [B, Ho, Wo]
    safe_w, safe_h = tf.maximum(w, 1e-3), tf.maximum(h, 1e-3)
    per_box_targets = tf.stack(
        [tf.math.log(safe_w / stride), tf.math.log(safe_h / stride), center_x, center_y], axis=-1
    )  # [B, M, 4]
    flat_owner = tf.reshape(owner, [tf.shape(owner)[0], -1])
    regression = tf.gather(per_box_targets, flat_owner, batch_dims=1)  # [B, Ho*Wo, 4]
    regression = tf.reshape(regression, [-1, out_h, out_w, 4])
    grid_x = tf.broadcast_to(xs[0, 0], [out_h, out_w])
    grid_y = tf.broadcast_to(ys[0, 0], [out_h, out_w])
    cells = tf.stack([tf.zeros_like(grid_x), tf.zeros_like(grid_x), grid_x, grid_y], axis=-1)
    regression = (regression - cells[None]) * tf.cast(owned, tf.float32)[..., None]  # offsets from the cell
    reg_mask_f = tf.cast(reg_mask, tf.float32)

    # Ignore regions: cells whose center lies inside one neither reward nor punish the heatmap.
    ignore_box = per_box(labels == IGNORE)
    cell_x = (xs + 0.5) * stride
    cell_y = (ys + 0.5) * stride
    inside = (
        (cell_x >= per_box(boxes[..., 0]))
        & (cell_x <= per_box(boxes[..., 2]))
        & (cell_y >= per_box(boxes[..., 1]))
        & (cell_y <= per_box(boxes[..., 3]))
        & ignore_box
    )
    ignored = tf.reduce_any(inside, axis=1) & ~reg_mask
    weight = 1.0 - tf.cast(ignored, tf.float32)

    target = tf.concat(
        [heat[..., None], weight[..., None], regression, reg_mask_f[..., None], reg_weight[..., None]],
        axis=-1,
    )
    target.set_shape([None, out_h, out_w, TARGET_CHANNELS])
    return target


def with_targets(dataset: tf.data.Dataset, image_size: tuple[int, int], stride: int) -> tf.data.Dataset:
    """Map build_input_pipeline's (images, {"boxes", "labels"}) batches to (images, dense targets)."""

    def encode(images: tf.Tensor, targets: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        return images, encode_batch(targets["boxes"], targets["labels"], image_size, stride)

    return dataset.map(encode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def training_dataset(
    dataset_dir: Path,
    batch_size: int,
    image_size: tuple[int, int],
    stride: int,
    training: bool,
    seed: int | None,
    max_boxes: int,
    **kwargs: Any,
) -> tf.data.Dataset:
    """The data layer's pipeline (decode, augmentation, batching) plus this model's target encoding."""
    from modelopsx.data.tfdata import build_input_pipeline

    pipeline = build_input_pipeline(
        dataset_dir,
        batch_size=batch_size,
        image_size=image_size,
        training=training,
        seed=seed,
        max_boxes=max_boxes,
        **kwargs,
    )
    return with_targets(pipeline, image_size, stride).prefetch(tf.data.AUTOTUNE)
