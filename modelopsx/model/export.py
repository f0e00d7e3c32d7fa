"""SavedModel export: `serving_default` takes encoded image bytes, returns boxes in original pixels.

Decoding and resizing run in the graph (the data layer's decode_image_for_model, so serving sees exactly what
training saw); images of different sizes in one batch go through tf.map_fn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tensorflow as tf

from modelopsx.model.config import TrainConfig


@tf.autograph.experimental.do_not_convert
def original_size(image_bytes: tf.Tensor) -> tf.Tensor:
    """(height, width) as float32; JPEG from the header alone, other formats by decoding."""

    def decoded() -> tf.Tensor:
        return tf.shape(tf.io.decode_image(image_bytes, channels=3, expand_animations=False))[:2]

    size = tf.cond(tf.io.is_jpeg(image_bytes), lambda: tf.image.extract_jpeg_shape(image_bytes)[:2], decoded)
    return tf.cast(size, tf.float32)


@tf.autograph.experimental.do_not_convert
def decode_for_model(image_bytes: tf.Tensor, input_size: tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    """One encoded image -> (model input [H, W, 3] float32 0..255, original (height, width))."""
    from modelopsx.data.tfdata import decode_image_for_model

    image = decode_image_for_model(image_bytes, input_size)
    image = tf.ensure_shape(tf.cast(image, tf.float32), [input_size[0], input_size[1], 3])
    return image, original_size(image_bytes)


def serving_function(model: Any, config: TrainConfig) -> Any:
    from modelopsx.model.decode import decode_detections

    height, width = config.input_size

    def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
        pixels, sizes = tf.map_fn(
            lambda b: decode_for_model(b, config.input_size),
            images,
            fn_output_signature=(
                tf.TensorSpec([height, width, 3], tf.float32),
                tf.TensorSpec([2], tf.float32),
            ),
        )
        outputs = model(pixels, training=False)
        boxes, scores = decode_detections(outputs, config.output_stride, config.max_detections)
        scale_y = sizes[:, 0:1] / float(height)
        scale_x = sizes[:, 1:2] / float(width)
        x1 = tf.clip_by_value(boxes[..., 0] * scale_x, 0.0, sizes[:, 1:2])
        y1 = tf.clip_by_value(boxes[..., 1] * scale_y, 0.0, sizes[:, 0:1])
        x2 = tf.clip_by_value(boxes[..., 2] * scale_x, 0.0, sizes[:, 1:2])
        y2 = tf.clip_by_value(boxes[..., 3] * scale_y, 0.0, sizes[:, 0:1])
        keep = scores >= config.min_score  # scores are sorted: kept detections come first
        keep_f = tf.cast(keep, tf.float32)
        boxes = tf.stack([x1, y1, x2, y2], axis=-1) * keep_f[..., None]
        return {
            "boxes": boxes,
            "scores": scores * keep_f,
            "count": tf.reduce_sum(tf.cast(keep, tf.int32), axis=1),
        }

    return serve


def export_saved_model(model: Any, config: TrainConfig, path: Path) -> Path:
    """Write a TF SavedModel (TF Serving / KServe layout) with the `serving_default` signature."""
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serving_default",
        fn=serving_function(model, config),
        input_signature=[tf.TensorSpec([None], tf.string, name="images")],
    )
    archive.write_out(str(path), verbose=False)
    return path
