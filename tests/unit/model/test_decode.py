import numpy as np
import pytest

from modelopsx.model.decode import coco_results, decode_detections, to_original_pixels
from modelopsx.model.heatmap import encode_targets_numpy


def _perfect_outputs(target: np.ndarray) -> np.ndarray:
    """Detector outputs that reproduce a target exactly (logit of the heatmap, regression as is)."""
    heat = np.clip(target[..., 0], 1e-4, 1 - 1e-4)
    out = np.zeros(target.shape[:2] + (5,), np.float32)
    out[..., 0] = np.log(heat / (1 - heat))
    out[..., 1:5] = target[..., 2:6]
    return out[None]


def test_decoding_a_perfect_heatmap_recovers_the_boxes() -> None:
    gt = np.array([[10, 20, 40, 100], [100, 30, 130, 90], [150, 60, 170, 110]], np.float32)
    target = encode_targets_numpy(gt, np.ones(3, np.int32), (128, 192), 4)
    boxes, scores = decode_detections(_perfect_outputs(target), stride=4, max_detections=10)
    boxes, scores = np.asarray(boxes)[0], np.asarray(scores)[0]
    found = boxes[scores > 0.5]
    assert len(found) == 3
    for box in gt:
        assert np.abs(found - box).max(axis=1).min() < 0.5
    assert np.all(np.diff(scores) <= 0)  # sorted


def test_scaling_to_original_pixels_and_coco_results() -> None:
    boxes = np.array([[10, 20, 30, 60], [0, 0, 500, 500]], np.float32)
    scaled = to_original_pixels(boxes, (128, 192), (256, 384))
    np.testing.assert_allclose(scaled[0], [20, 40, 60, 120])
    assert scaled[1].tolist() == [0, 0, 384, 256]  # clipped to the image
    results = coco_results(7, scaled, np.array([0.9, 0.005]), min_score=0.01)
    assert results == [{"image_id": 7, "category_id": 1, "bbox": [20.0, 40.0, 40.0, 80.0], "score": 0.9}]
    assert pytest.approx(results[0]["score"]) == 0.9
