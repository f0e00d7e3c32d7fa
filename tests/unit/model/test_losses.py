import numpy as np
import pytest

from modelopsx.model.heatmap import encode_targets_numpy

tf = pytest.importorskip("tensorflow")

from modelopsx.model.losses import CenterNetLoss, giou_loss_dense, size_l1_loss  # noqa: E402

SIZE = (64, 96)
STRIDE = 4


def _target() -> np.ndarray:
    boxes = np.array([[10, 8, 22, 50], [60, 20, 72, 44]], np.float32)
    return encode_targets_numpy(boxes, np.array([1, 1]), SIZE, STRIDE)[None]


def _perfect_prediction(target: np.ndarray) -> np.ndarray:
    """Logits that put the heatmap where the target has it, and the target's own box regression."""
    heat = np.clip(target[..., 0:1], 1e-4, 1 - 1e-4)
    return np.concatenate([np.log(heat / (1 - heat)), target[..., 2:6]], axis=-1).astype(np.float32)


def test_giou_is_zero_for_exact_boxes_and_grows_with_the_error() -> None:
    target = _target()
    exact = _perfect_prediction(target)
    assert float(giou_loss_dense(target, exact)[0]) == pytest.approx(0.0, abs=1e-5)
    losses = []
    for widen in (0.1, 0.4, 1.0):
        pred = exact.copy()
        pred[..., 1] += widen  # log width: boxes too wide by e^widen
        losses.append(float(giou_loss_dense(target, pred)[0]))
    assert 0 < losses[0] < losses[1] < losses[2] < 2.0


def test_giou_weighs_thin_boxes_harder_than_l1_on_log_sizes() -> None:
    """The same log-width error costs the same L1 on any box, but GIoU also counts a shifted centre, which
    ruins a thin box's overlap far more than a wide one's."""
    target = _target()
    shifted = _perfect_prediction(target)
    shifted[..., 3] += 0.5  # half a cell to the right
    thin_target = target.copy()
    thin_target[..., 2] -= np.log(3.0)  # the same boxes, a third as wide
    thin_shifted = shifted.copy()
    thin_shifted[..., 1] -= np.log(3.0)
    assert float(size_l1_loss(thin_target, thin_shifted)[0]) == pytest.approx(
        float(size_l1_loss(target, shifted)[0])
    )
    thin_giou = float(giou_loss_dense(thin_target, thin_shifted)[0])
    assert thin_giou > 2 * float(giou_loss_dense(target, shifted)[0])


def test_combined_loss_adds_the_giou_term_only_when_weighted() -> None:
    target = _target()
    pred = _perfect_prediction(target)
    pred[..., 1:3] += 0.3
    plain = float(CenterNetLoss()(target, pred))
    weighted = float(CenterNetLoss(giou_weight=2.0)(target, pred))
    assert weighted == pytest.approx(plain + 2.0 * float(giou_loss_dense(target, pred)[0]), rel=1e-5)
    restored = CenterNetLoss.from_config(CenterNetLoss(giou_weight=2.0).get_config())
    assert restored.giou_weight == 2.0
