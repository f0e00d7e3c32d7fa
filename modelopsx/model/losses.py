"""CenterNet losses in keras.ops (any backend): penalty-reduced focal loss on the heatmap, L1 on size/offset.

y_true is the 8-channel target of heatmap.py, y_pred the detector's 5-channel output. Each loss returns one
value per image, scaled so that Keras' mean over the batch equals the batch sum divided by the batch's
number of pedestrians (the CenterNet normalisation).
"""

from __future__ import annotations

from typing import Any

import keras

from modelopsx.model.decode import cell_box_corners

ops = keras.ops


def _per_image_scale(y_true: Any) -> Any:
    batch = ops.cast(ops.shape(y_true)[0], "float32")
    num_pos = ops.maximum(ops.sum(y_true[..., 6]), 1.0)
    return batch / num_pos


def heatmap_focal_loss(y_true: Any, y_pred: Any, alpha: float = 2.0, beta: float = 4.0) -> Any:
    y_true = ops.cast(y_true, "float32")
    logits = ops.cast(y_pred[..., 0], "float32")
    heat, weight, pos = y_true[..., 0], y_true[..., 1], y_true[..., 6]
    prob = ops.clip(ops.sigmoid(logits), 1e-4, 1.0 - 1e-4)
    log_p = ops.log_sigmoid(logits)
    log_not_p = ops.log_sigmoid(-logits)
    pos_loss = log_p * ops.power(1.0 - prob, alpha) * pos
    neg_loss = log_not_p * ops.power(prob, alpha) * ops.power(1.0 - heat, beta) * (1.0 - pos) * weight
    per_image = -ops.sum(pos_loss + neg_loss, axis=(1, 2))
    return per_image * _per_image_scale(y_true)


def _masked_l1(y_true: Any, y_pred: Any, channels: slice, pred_channels: slice) -> Any:
    y_true = ops.cast(y_true, "float32")
    mask = y_true[..., 7:8]  # dense regression weight, sums to 1 per pedestrian
    diff = ops.abs(ops.cast(y_pred[..., pred_channels], "float32") - y_true[..., channels]) * mask
    return ops.sum(diff, axis=(1, 2, 3)) * _per_image_scale(y_true)


def giou_loss_dense(y_true: Any, y_pred: Any) -> Any:
    """1 - GIoU between the decoded predicted and target boxes, over the dense regression area (TTFNet).

    Box IoU is what ap50 scores; L1 on log sizes treats a 1-cell error on a thin pedestrian like one on a
    wide car, GIoU does not."""
    y_true = ops.cast(y_true, "float32")
    mask = y_true[..., 7]
    px1, py1, px2, py2 = cell_box_corners(ops.cast(y_pred[..., 1:5], "float32"))
    tx1, ty1, tx2, ty2 = cell_box_corners(y_true[..., 2:6])
    inter = ops.maximum(ops.minimum(px2, tx2) - ops.maximum(px1, tx1), 0.0) * ops.maximum(
        ops.minimum(py2, ty2) - ops.maximum(py1, ty1), 0.0
    )
    union = (px2 - px1) * (py2 - py1) + (tx2 - tx1) * (ty2 - ty1) - inter
    hull = (ops.maximum(px2, tx2) - ops.minimum(px1, tx1)) * (ops.maximum(py2, ty2) - ops.minimum(py1, ty1))
    iou = inter / ops.maximum(union, 1e-6)
    giou = iou - (hull - union) / ops.maximum(hull, 1e-6)
    return ops.sum((1.0 - giou) * mask, axis=(1, 2)) * _per_image_scale(y_true)


def size_l1_loss(y_true: Any, y_pred: Any) -> Any:
    return _masked_l1(y_true, y_pred, slice(2, 4), slice(1, 3))


def offset_l1_loss(y_true: Any, y_pred: Any) -> Any:
    return _masked_l1(y_true, y_pred, slice(4, 6), slice(3, 5))


@keras.saving.register_keras_serializable(package="modelopsx")
class CenterNetLoss(keras.losses.Loss):
    """heatmap focal + size_weight * L1(log size) + offset_weight * L1(offset) + giou_weight * (1 - GIoU)."""

    def __init__(
        self,
        size_weight: float = 1.0,
        offset_weight: float = 1.0,
        giou_weight: float = 0.0,
        name: str = "centernet_loss",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.size_weight = size_weight
        self.offset_weight = offset_weight
        self.giou_weight = giou_weight

    def call(self, y_true: Any, y_pred: Any) -> Any:
        total = (
            heatmap_focal_loss(y_true, y_pred)
            + self.size_weight * size_l1_loss(y_true, y_pred)
            + self.offset_weight * offset_l1_loss(y_true, y_pred)
        )
        if self.giou_weight:
            total = total + self.giou_weight * giou_loss_dense(y_true, y_pred)
        return total

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "size_weight": self.size_weight,
            "offset_weight": self.offset_weight,
            "giou_weight": self.giou_weight,
        }


@keras.saving.register_keras_serializable(package="modelopsx")
def heatmap_loss(y_true: Any, y_pred: Any) -> Any:
    return heatmap_focal_loss(y_true, y_pred)


@keras.saving.register_keras_serializable(package="modelopsx")
def size_loss(y_true: Any, y_pred: Any) -> Any:
    return size_l1_loss(y_true, y_pred)


@keras.saving.register_keras_serializable(package="modelopsx")
def offset_loss(y_true: Any, y_pred: Any) -> Any:
    return offset_l1_loss(y_true, y_pred)


def loss_metrics() -> list[Any]:
    return [heatmap_loss, size_loss, offset_loss]
