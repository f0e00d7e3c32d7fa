"""One schema check: what `validate` passes, `split` and the evaluation loader accept, and the reverse."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelopsx.data.schema import annotation_entry_problems, image_entry_problems
from modelopsx.data.split import split_dataset
from modelopsx.data.validate import validate_dataset
from modelopsx.errors import DatasetError
from modelopsx.evaluation.inputs import load_ground_truth
from tests.unit.data.data_io_fixtures import make_dataset


def _set(where: str, field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data[where][0][field] = value

    return edit


TYPE_ERRORS = {
    "string visibility": _set("annotations", "visibility", "high"),
    "numeric-string visibility": _set("annotations", "visibility", "0.5"),
    "iscrowd yes": _set("annotations", "iscrowd", "yes"),
    "iscrowd 2": _set("annotations", "iscrowd", 2),
    "float image id": _set("images", "id", 1.5),
    "float image id 1.0": _set("images", "id", 1.0),
    "float annotation image_id": _set("annotations", "image_id", 1.0),
    "boolean box values": _set("annotations", "bbox", [True, True, True, True]),
    "string box values": _set("annotations", "bbox", ["1", "2", "3", "4"]),
    "null box value": _set("annotations", "bbox", [1, 2, None, 4]),
    "NaN box value": _set("annotations", "bbox", [float("nan"), 2, 3, 4]),
    "string category": _set("annotations", "category_id", "1"),
    "string width": _set("images", "width", "64"),
    "absolute file name": _set("images", "file_name", "/etc/hostname"),
}


@pytest.mark.parametrize("edit", TYPE_ERRORS.values(), ids=TYPE_ERRORS.keys())
def test_validate_split_and_evaluate_refuse_the_same_type_errors(tmp_path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "ds"
    make_dataset(root, n_images=3)
    path = root / "annotations.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))

    report = validate_dataset(root)
    assert not report.ok and any("malformed entry" in e for e in report.errors), report.errors
    with pytest.raises(DatasetError, match="is malformed"):
        split_dataset(root, tmp_path / "split")
    assert not (tmp_path / "split").exists()
    with pytest.raises(DatasetError, match="is malformed"):
        load_ground_truth(root)


def test_a_clean_dataset_passes_all_three(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    make_dataset(root, n_images=3)
    assert validate_dataset(root).ok
    split_dataset(root, tmp_path / "split")
    assert len(load_ground_truth(root).images) == 3


def test_problems_name_the_field_and_the_value() -> None:
    assert image_entry_problems({"id": 1.5, "file_name": "a.jpg", "width": 4, "height": 4}) == [
        "'id' must be an integer, got 1.5"
    ]
    problems = annotation_entry_problems({"id": 1, "bbox": [0, 0, 1, float("inf")], "iscrowd": "yes"})
    assert problems == [
        "'image_id' is missing (an integer image id)",
        "'bbox' must be four finite numbers [x, y, w, h], got [0, 0, 1, inf]",
        "'iscrowd' must be 0 or 1, got 'yes'",
    ]
    assert (
        annotation_entry_problems(
            {"id": 1, "image_id": 2, "bbox": [0, 0, 1, 1], "iscrowd": True, "truncation": None, "height": 1}
        )
        == []
    )
    assert annotation_entry_problems([1, 2]) == ["entry must be an object, got list"]
