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


def _edit_coco(src: Path, edit) -> None:  # type: ignore[no-untyped-def]
    path = src / "annotations" / "instances_val2017.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))  # json writes NaN and Infinity as Python reads them


@pytest.mark.parametrize("name", ["../../outside.jpg", "ABSOLUTE"])
def test_file_name_outside_the_source_is_refused_and_not_read(tmp_path: Path, name: str) -> None:
    src = build_coco(tmp_path / "coco")
    outside = tmp_path / "outside.jpg"
    write_image(outside, 64, 48, seed=9)
    name = str(outside) if name == "ABSOLUTE" else name

    def edit(data: dict) -> None:  # type: ignore[type-arg]
        data["images"][1]["file_name"] = name

    _edit_coco(src, edit)
    with pytest.raises(DatasetError, match="images\\[1\\]: file name .* (absolute path|climbs out)"):
        import_dataset(src, "coco", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_symlinked_image_leading_outside_the_source_is_refused(tmp_path: Path) -> None:
    src = build_coco(tmp_path / "coco")
    outside = tmp_path / "private.jpg"
    write_image(outside, 64, 48, seed=9)
    image = src / "val2017" / "000000000285.jpg"
    image.unlink()
    image.symlink_to(outside)
    with pytest.raises(DatasetError, match="leads outside"):
        import_dataset(src, "coco", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "bbox", [[float("nan"), 0, 10, 10], [0, 0, float("inf"), 10], [0, 0, 10, float("-inf")]]
)
def test_nan_or_infinite_box_is_refused_not_made_a_full_image_box(tmp_path: Path, bbox: list) -> None:  # type: ignore[type-arg]
    src = build_coco(tmp_path / "coco")

    def edit(data: dict) -> None:  # type: ignore[type-arg]
        data["annotations"][0]["bbox"] = bbox

    _edit_coco(src, edit)
    with pytest.raises(DatasetError, match=r"annotations\[0\]: bbox must be four finite numbers"):
        import_dataset(src, "coco", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("bbox", ["1", "2", "3", "4"], "bbox must be four finite numbers"),
        ("bbox", [None, None, None, None], "bbox must be four finite numbers"),
        ("bbox", [True, 0, 5, 5], "bbox must be four finite numbers"),
        ("category_id", "1", "'category_id' must be an integer, got '1'"),
        ("image_id", "139", "'image_id' must be an integer, got '139'"),
        ("image_id", 139.5, "'image_id' must be an integer, got 139.5"),
    ],
)
def test_wrongly_typed_annotation_fields_are_clean_errors(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    src = build_coco(tmp_path / "coco")

    def edit(data: dict) -> None:  # type: ignore[type-arg]
        data["annotations"][0][field] = value

    _edit_coco(src, edit)
    with pytest.raises(DatasetError, match=r"annotations\[0\]") as exc:
        import_dataset(src, "coco", tmp_path / "out")
    assert message in exc.value.message
    assert not (tmp_path / "out").exists()


def test_wrongly_typed_box_through_the_cli_exits_2_without_traceback(tmp_path: Path) -> None:
    src = build_coco(tmp_path / "coco")

    def edit(data: dict) -> None:  # type: ignore[type-arg]
        data["annotations"][0]["bbox"] = ["a", None, 3, 4]

    _edit_coco(src, edit)
    result = run_cli("dataset", "import", src, "--format", "coco", "--out", tmp_path / "out")
    assert_clean_failure(result, "bbox must be four finite numbers")
    assert result.returncode == 2


def _deep(text: str) -> str:
    return text.replace('"licenses": []', '"licenses": ' + "[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize(
    "rewrite, message",
    [
        (lambda t: t.replace('"categories": [', '"categories": 5, "_": ['), "'categories' must be a list"),
        (
            lambda t: t.replace('"id": 139', '"id": ' + "7" * 5000),
            "a number has more digits than can be read",
        ),
        (_deep, "nested too deeply"),
        (lambda t: t.replace('"licenses": []', '"images": []'), "key 'images' appears more than once"),
    ],
    ids=["categories-5", "5000-digit-id", "nested-100k-deep", "duplicate-key"],
)
def test_hostile_annotation_json_is_a_clean_error(tmp_path: Path, rewrite, message: str) -> None:  # type: ignore[no-untyped-def]
    src = build_coco(tmp_path / "coco")
    path = src / "annotations" / "instances_val2017.json"
    path.write_text(rewrite(path.read_text()))
    with pytest.raises(DatasetError) as exc:
        import_dataset(src, "coco", tmp_path / "out")
    assert message in exc.value.message and "instances_val2017.json" in exc.value.message
    assert not (tmp_path / "out").exists()


def test_deeply_nested_annotations_through_the_cli_exit_2_without_traceback(tmp_path: Path) -> None:
    src = build_coco(tmp_path / "coco")
    path = src / "annotations" / "instances_val2017.json"
    path.write_text(_deep(path.read_text()))
    result = run_cli("dataset", "import", src, "--format", "coco", "--out", tmp_path / "out")
    assert_clean_failure(result, "nested too deeply")
    assert result.returncode == 2
