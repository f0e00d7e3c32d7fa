"""The array loaders give exactly what the Dataset path gives, and hand anything unusual to it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from modelopsx.data.format import dataset_from_json
from modelopsx.errors import DatasetError
from modelopsx.evaluation.coco_ap import coco_ap
from modelopsx.evaluation.inputs import (
    DetectionsError,
    detection_arrays,
    ground_truth_arrays,
    load_detection_arrays,
    load_ground_truth_arrays,
)
from modelopsx.evaluation.json_arrays import detections_from_bytes, detections_from_list

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


def test_detections_from_list_path_equals_the_regular_one(tmp_path: Path) -> None:
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(GT))
    gt = load_ground_truth_arrays(path)
    assert detections_from_list(DETS) is not None
    fast = detection_arrays(DETS, gt)
    numpy_scalars = [{**d, "score": np.float32(d["score"])} for d in DETS]  # in-process callers
    assert detections_from_list(numpy_scalars) is None
    slow = detection_arrays(numpy_scalars, gt)
    assert np.array_equal(fast.image, slow.image) and np.array_equal(fast.boxes, slow.boxes)
    assert np.allclose(fast.scores, slow.scores) and fast.dropped_other_category == 1
    assert detections_from_list([{**DETS[0], "bbox": [1, 2, 3]}]) is None  # named by the regular path


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


def _arrays_equal(a: object, b: object, fields: tuple[str, ...]) -> None:
    for field in fields:
        assert np.array_equal(getattr(a, field), getattr(b, field)), field


def test_a_detections_file_goes_straight_into_the_same_arrays(tmp_path: Path) -> None:
    gt = ground_truth_arrays(dataset_from_json(GT, tmp_path, tmp_path / "annotations.json"))
    path = tmp_path / "detections.json"
    path.write_bytes(json.dumps(DETS).encode())
    assert detections_from_bytes(path.read_bytes()) is not None
    from_file = load_detection_arrays(path, gt)
    _arrays_equal(from_file, detection_arrays(DETS, gt), ("image", "boxes", "scores"))
    assert from_file.dropped_other_category == 1


@pytest.mark.parametrize(
    "entry, message",
    [
        (
            {"image_id": 1.5, "bbox": [1, 2, 3, 4], "score": 0.5},
            r"detections\[1\]: image_id 1.5 is not an integer",
        ),
        (
            {"image_id": 1, "bbox": [1, 2, 3], "score": 0.5},
            r"detections\[1\]: bbox \[1, 2, 3\] is not 4 numbers",
        ),
        ({"image_id": 1, "bbox": [1, 2, -3, 4], "score": 0.5}, r"detections\[1\]: bbox .* negative width"),
        ({"image_id": 1, "bbox": [1, 2, 3, 4], "score": -0.5}, r"detections\[1\]: score -0.5 is negative"),
        (
            {"image_id": 1, "bbox": [1, 2, 3, 4], "score": True},
            r"detections\[1\]: score True is not a number",
        ),
        ({"image_id": 1, "bbox": [1, 2, 3, 4]}, r"detections\[1\] has no 'score'"),
    ],
)
def test_a_bad_entry_in_a_file_is_named_by_the_regular_path(
    tmp_path: Path, entry: dict, message: str
) -> None:
    gt = ground_truth_arrays(dataset_from_json(GT, tmp_path, tmp_path / "annotations.json"))
    path = tmp_path / "detections.json"
    path.write_text(json.dumps([DETS[0], entry]))
    assert detections_from_bytes(path.read_bytes()) is None
    with pytest.raises(DetectionsError, match=message):
        load_detection_arrays(path, gt)


def test_nan_in_a_detections_file_is_named_not_a_parse_error(tmp_path: Path) -> None:
    gt = ground_truth_arrays(dataset_from_json(GT, tmp_path, tmp_path / "annotations.json"))
    path = tmp_path / "detections.json"
    path.write_text('[{"image_id": 1, "bbox": [1, 2, 3, 4], "score": NaN}]')  # what json.dumps writes
    with pytest.raises(DetectionsError, match=r"detections\[0\]: score is nan"):
        load_detection_arrays(path, gt)


def test_other_categories_need_no_box_in_either_path(tmp_path: Path) -> None:
    """The regular path drops other categories before reading boxes; the fast path hands them over."""
    gt = ground_truth_arrays(dataset_from_json(GT, tmp_path, tmp_path / "annotations.json"))
    path = tmp_path / "detections.json"
    path.write_text(json.dumps([DETS[0], {"image_id": 2, "category_id": 3, "score": 0.1}]))
    arrays = load_detection_arrays(path, gt)
    assert arrays.size == 1 and arrays.dropped_other_category == 1


@pytest.mark.parametrize(
    "change",
    [
        lambda gt: gt["annotations"][0].update(iscrowd=2),  # a flag the schema judges
        lambda gt: gt["annotations"][0].update(bbox=[1, 2, -10, 20]),
        lambda gt: gt["annotations"][2].pop("bbox"),  # another category, no box
        lambda gt: gt["images"][0].update(group=None),
        lambda gt: gt["annotations"][1].update(visibility=None),
    ],
)
def test_ground_truth_fast_path_and_regular_path_agree(tmp_path: Path, change: object) -> None:
    data = json.loads(json.dumps(GT))
    change(data)  # type: ignore[operator]
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(data))
    try:
        expected = ground_truth_arrays(dataset_from_json(json.loads(path.read_text()), tmp_path, path))
    except DatasetError as exc:
        with pytest.raises(DatasetError, match=re.escape(exc.message)):
            load_ground_truth_arrays(path)
        return
    _arrays_equal(
        load_ground_truth_arrays(path),
        expected,
        ("image_ids", "box_image", "boxes", "ignored", "visibility", "height"),
    )
