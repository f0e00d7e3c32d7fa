import numpy as np
import pytest

from modelopsx.model.heatmap import encode_targets_numpy

tf = pytest.importorskip("tensorflow")

from modelopsx.model.targets import encode_batch  # noqa: E402

SIZE = (128, 192)


def _example() -> tuple[np.ndarray, np.ndarray]:
    boxes = np.zeros((2, 8, 4), np.float32)
    labels = np.zeros((2, 8), np.int32)
    boxes[0, :4] = [[10, 20, 40, 100], [12, 22, 38, 98], [100, 30, 130, 90], [150, 0, 192, 60]]
    labels[0, :4] = [1, 1, 1, -1]
    boxes[1, :2] = [[-10, 40, 30, 120], [60, 60, 61, 62]]  # partly outside; too thin to have a center
    labels[1, :2] = [1, 1]
    return boxes, labels


def test_tf_encoding_matches_numpy_reference() -> None:
    boxes, labels = _example()
    encoded = encode_batch(tf.constant(boxes), tf.constant(labels), SIZE, 4).numpy()
    for i in range(2):
        reference = encode_targets_numpy(boxes[i], labels[i], SIZE, 4)
        np.testing.assert_allclose(encoded[i], reference, atol=1e-5)


def test_centers_sizes_offsets_and_ignore_regions() -> None:
    boxes, labels = _example()
    target = encode_targets_numpy(boxes[0], labels[0], SIZE, 4)
    # two pedestrians share a center cell: one regression target (the smaller box), plus the third
    assert target[..., 6].sum() == 2
    cy, cx = int(60 / 4), int(25 / 4)
    assert target[cy, cx, 0] == pytest.approx(1.0)
    assert np.exp(target[cy, cx, 2]) * 4 == pytest.approx(26.0)  # the smaller box's width
    assert target[cy, cx, 4] == pytest.approx(25 / 4 - cx)
    # cells inside the ignore region carry no heatmap loss; elsewhere the weight is 1
    assert target[5, 42, 1] == 0.0 and target[5, 5, 1] == 1.0
    thin = encode_targets_numpy(boxes[1], labels[1], SIZE, 4)
    assert thin[..., 6].sum() == 1


def test_dense_regression_weights_cover_each_pedestrian_once() -> None:
    boxes, labels = _example()
    target = encode_targets_numpy(boxes[0], labels[0], SIZE, 4)
    weight = target[..., 7]
    # the two boxes sharing a center split the cells, each with weights summing to 1; the third owns its own
    assert weight.sum() == pytest.approx(3.0, abs=1e-4)
    assert (weight > 0).sum() > 3 * 4  # dense: many cells per pedestrian, not only the centers
    # a cell off the center of the third pedestrian (center x 115, y 60) regresses its size and the offset
    # from that cell to the center
    cy, cx = int(60 / 4), int(115 / 4) + 1
    assert weight[cy, cx] > 0
    assert np.exp(target[cy, cx, 3]) * 4 == pytest.approx(60.0)
    assert target[cy, cx, 4] == pytest.approx(115 / 4 - cx)
    assert np.all(weight[target[..., 0] == 0] == 0)
