import json
import shutil
from pathlib import Path

import pytest

from modelopsx.data.format import load_dataset
from modelopsx.data.importers import import_dataset
from modelopsx.errors import DatasetError
from tests.unit.data.data_io_fixtures import assert_clean_failure, run_cli, write_image


def build_coco(root: Path, split: str = "val2017") -> Path:
    """The real COCO layout: annotations/instances_<split>.json next to <split>/ with the JPEGs."""
    images = [
        {"id": 139, "file_name": "000000000139.jpg", "width": 64, "height": 48, "license": 2},
        {"id": 285, "file_name": "000000000285.jpg", "width": 64, "height": 48},
        {"id": 632, "file_name": "000000000632.jpg", "width": 64, "height": 48},
    ]
    for k, img in enumerate(images):
        write_image(root / split / img["file_name"], img["width"], img["height"], seed=k)
    data = {
        "info": {"description": "COCO 2017"},
        "licenses": [],
        "images": images,
        "categories": [
            {"supercategory": "person", "id": 1, "name": "person"},
            {"supercategory": "animal", "id": 23, "name": "bear"},
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 139,
                "category_id": 1,
                "bbox": [10.5, 4.0, 20.0, 30.25],
                "area": 605.0,
                "iscrowd": 0,
                "segmentation": [[10, 4, 30, 4, 30, 34]],
            },
            {
                "id": 2,
                "image_id": 139,
                "category_id": 1,
                "bbox": [0, 0, 60, 40],
                "area": 2400,
                "iscrowd": 1,
                "segmentation": {"counts": [0, 10], "size": [48, 64]},
            },
            {"id": 3, "image_id": 285, "category_id": 23, "bbox": [1, 1, 50, 40], "area": 2000, "iscrowd": 0},
        ],
    }
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
    return root


def test_person_only_crowd_kept_person_free_images_kept(tmp_path: Path) -> None:
    src = build_coco(tmp_path / "coco")
    import_dataset(src, "coco", tmp_path / "out")
    ds = load_dataset(tmp_path / "out")
    assert [img.extra["source_id"] for img in ds.images] == [139, 285, 632]
    assert [b.bbox for b in ds.annotations] == [[10.5, 4.0, 20.0, 30.25], [0, 0, 60, 40]]
    assert [(b.iscrowd, b.ignore) for b in ds.annotations] == [(0, 0), (1, 1)]
    assert {b.image_id for b in ds.annotations} == {1}
    assert all(b.category_id == 1 for b in ds.annotations)


def test_json_file_as_source_with_images_dir_and_zip(tmp_path: Path) -> None:
    src = build_coco(tmp_path / "coco")
    shutil.move(src / "val2017", src / "pictures")
    ann = src / "annotations" / "instances_val2017.json"
    with pytest.raises(DatasetError, match="--images-dir"):
        import_dataset(ann, "coco", tmp_path / "out0")
    import_dataset(ann, "coco", tmp_path / "out1", images_dir=src / "pictures")
    assert len(load_dataset(tmp_path / "out1").images) == 3
    archive = shutil.make_archive(str(tmp_path / "coco_zip"), "zip", root_dir=tmp_path / "coco")
    result = run_cli(
        "dataset",
        "import",
        archive,
        "--format",
        "coco",
        "--out",
        tmp_path / "out2",
        "--images-dir",
        "pictures",
        "-q",
    )
    assert result.returncode == 0, result.stderr
    assert len(load_dataset(tmp_path / "out2").annotations) == 2


def test_several_annotation_files_need_split(tmp_path: Path) -> None:
    build_coco(tmp_path / "coco", "val2017")
    build_coco(tmp_path / "coco", "train2017")
    with pytest.raises(DatasetError, match="several annotation files"):
        import_dataset(tmp_path / "coco", "coco", tmp_path / "out")
    import_dataset(tmp_path / "coco", "coco", tmp_path / "out", split="train2017")
    assert load_dataset(tmp_path / "out").info["format"] == "coco"


def test_annotation_file_that_is_not_json(tmp_path: Path) -> None:
    src = build_coco(tmp_path / "coco")
    (src / "annotations" / "instances_val2017.json").write_text("{'images': [")
    result = run_cli("dataset", "import", src, "--format", "coco", "--out", tmp_path / "out")
    assert_clean_failure(result, "instances_val2017.json: not valid JSON (line 1")
    assert not (tmp_path / "out").exists()


def test_no_person_category(tmp_path: Path) -> None:
    src = build_coco(tmp_path / "coco")
    path = src / "annotations" / "instances_val2017.json"
    data = json.loads(path.read_text())
    data["categories"] = [{"id": 23, "name": "bear"}]
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=r"no 'person' category \(categories: bear\)"):
        import_dataset(src, "coco", tmp_path / "out")
