"""The array loaders give exactly what the Dataset path gives, and hand anything unusual to it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from modelopsx.data.format import dataset_from_json
from modelopsx.errors import DatasetError
from modelopsx.evaluation.coco_ap import coco_ap
from modelopsx.evaluation.inputs import detection_arrays, ground_truth_arrays, load_ground_truth_arrays
from modelopsx.evaluation.json_arrays import detections_fast

GT = {
    "images": [{"id": i, "file_name": f"{i}.jpg", "width": 64, "height": 48} for i in (3, 1, 2)],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 20], "visibility": 0.5, "height": 30},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [5.5, 2, 10, 22.5], "iscrowd": 1},
        {"id": 3, "image_id": 2, "category_id": 2, "bbox": [0, 0, 4, 4]},
        {"id": 4, "image_id": 3, "bbox": [0, 0, 8, 16], "ignore": True, "truncation": None},
    ],
    "categories": [{"id": 1, "name": "pedestrian"}],
}
DETS = [
    {"image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 19], "score": 0.9},
    {"image_id": 3, "category_id": 1, "bbox": [0.5, 0, 8, 16], "score": 1},
    {"image_id": 2, "category_id": 7, "bbox": [0, 0, 4, 4], "score": 0.4},
]


def test_ground_truth_file_equals_the_dataset_path(tmp_path: Path) -> None:
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(GT))
    fast = load_ground_truth_arrays(path)
    slow = ground_truth_arrays(dataset_from_json(GT, tmp_path, path))
    for field in ("image_ids", "box_image", "boxes", "ignored", "visibility", "height"):
        assert np.array_equal(getattr(fast, field), getattr(slow, field)), field
    assert fast.height.tolist() == [30.0, 22.5, 16.0]  # a missing height comes from the bbox
    assert coco_ap(path, DETS).ap == coco_ap(dataset_from_json(GT, tmp_path, path), DETS).ap


def test_unusual_ground_truth_takes_the_regular_path_and_its_message(tmp_path: Path) -> None:
    path = tmp_path / "annotations.json"
    broken = json.loads(json.dumps(GT))
    broken["annotations"][0]["image_id"] = 1.0  # not a JSON integer
    path.write_text(json.dumps(broken))
    with pytest.raises(DatasetError, match=r"annotations\[0\] is malformed: 'image_id' must be"):
        load_ground_truth_arrays(path)


def test_detections_fast_path_equals_the_regular_one(tmp_path: Path) -> None:
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(GT))
    gt = load_ground_truth_arrays(path)
    assert detections_fast(DETS) is not None
    fast = detection_arrays(DETS, gt)
    numpy_scalars = [{**d, "score": np.float32(d["score"])} for d in DETS]  # in-process callers
    assert detections_fast(numpy_scalars) is None
    slow = detection_arrays(numpy_scalars, gt)
    assert np.array_equal(fast.image, slow.image) and np.array_equal(fast.boxes, slow.boxes)
    assert np.allclose(fast.scores, slow.scores) and fast.dropped_other_category == 1
    assert detections_fast([{**DETS[0], "bbox": [1, 2, 3]}]) is None  # named by the regular path


@pytest.mark.parametrize(
    "field, value", [("file_name", "../outside.jpg"), ("file_name", "/abs.jpg"), ("id", True), ("width", 6.5)]
)
def test_malformed_image_entries_are_named_as_by_the_dataset_path(
    tmp_path: Path, field: str, value: object
) -> None:
    path = tmp_path / "annotations.json"
    broken = json.loads(json.dumps(GT))
    broken["images"][1][field] = value
    path.write_text(json.dumps(broken))
    with pytest.raises(DatasetError, match=r"images\[1\] is malformed"):
        load_ground_truth_arrays(path)
