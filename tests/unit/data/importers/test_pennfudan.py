import json
import shutil
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from modelopsx.data.format import load_dataset
from modelopsx.data.importers import import_dataset
from modelopsx.errors import DatasetError
from tests.unit.data.data_io_fixtures import assert_clean_failure, run_cli, write_image

HEADER = """# Compatible with PASCAL Annotation Version 1.00
Image filename : "PennFudanPed/PNGImages/{name}.png"
Image size (X x Y x C) : {w} x {h} x 3
Database : "The Penn-Fudan-Pedestrian Database"
Objects with ground truth : {n} {{ {labels} }}
# Note there may be some objects not included in the ground truth list for they are severe-occluded
# or have very small size.
# Top left pixel co-ordinates : (1, 1)
"""
OBJECT = """# Details for pedestrian {i} ("PASpersonWalking")
Original label for object {i} "PASpersonWalking" : "PennFudanPed"
Bounding box for object {i} "PASpersonWalking" (Xmin, Ymin) - (Xmax, Ymax) : ({x1}, {y1}) - ({x2}, {y2})
Pixel mask for object {i} "PASpersonWalking" : "PennFudanPed/PedMasks/{name}_mask.png"
"""


def build_pennfudan(
    root: Path, images: dict[str, list[tuple[int, int, int, int]]], size: tuple[int, int] = (120, 90)
) -> Path:
    """The real PennFudanPed layout: PNGImages/, PedMasks/, Annotation/ with PASCAL v1.00 text."""
    w, h = size
    for k, (name, boxes) in enumerate(images.items()):
        write_image(root / "PNGImages" / f"{name}.png", w, h, seed=k)
        mask = np.zeros((h, w), np.uint8)
        for i, (x1, y1, x2, y2) in enumerate(boxes, start=1):
            mask[y1 - 1 : y2, x1 - 1 : x2] = i
        (root / "PedMasks").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "PedMasks" / f"{name}_mask.png"), mask)
        text = HEADER.format(
            name=name, w=w, h=h, n=len(boxes), labels=" ".join(['"PASpersonWalking"'] * len(boxes))
        )
        for i, (x1, y1, x2, y2) in enumerate(boxes, start=1):
            text += OBJECT.format(i=i, name=name, x1=x1, y1=y1, x2=x2, y2=y2)
        (root / "Annotation").mkdir(parents=True, exist_ok=True)
        (root / "Annotation" / f"{name}.txt").write_text(text)
    return root


def test_import_converts_one_based_inclusive_corners(tmp_path: Path) -> None:
    src = build_pennfudan(
        tmp_path / "PennFudanPed",
        {"FudanPed00001": [(1, 1, 10, 20), (50, 30, 120, 90)], "PennPed00002": [(11, 21, 40, 80)]},
    )
    result = import_dataset(src, "pennfudan", tmp_path / "out")
    ds = load_dataset(tmp_path / "out")
    assert [img.file_name for img in ds.images] == ["FudanPed00001.png", "PennPed00002.png"]
    assert [img.group for img in ds.images] == ["FudanPed00001", "PennPed00002"]
    assert (ds.images[0].width, ds.images[0].height) == (120, 90)
    assert [b.bbox for b in ds.annotations] == [[0, 0, 10, 20], [49, 29, 71, 61], [10, 20, 30, 60]]
    assert [b.image_id for b in ds.annotations] == [1, 1, 2]
    assert all(b.ignore == 0 and b.iscrowd == 0 for b in ds.annotations)
    assert (tmp_path / "out" / "images" / "PennPed00002.png").read_bytes() == (
        src / "PNGImages" / "PennPed00002.png"
    ).read_bytes()
    assert result.clipped == 0 and not result.warnings


@pytest.mark.parametrize("kind", ["zip", "gztar"])
def test_import_from_zip_and_tar(tmp_path: Path, kind: str) -> None:
    build_pennfudan(tmp_path / "src" / "PennFudanPed", {"FudanPed00001": [(5, 6, 30, 60)]})
    archive = Path(shutil.make_archive(str(tmp_path / "PennFudanPed"), kind, root_dir=tmp_path / "src"))
    if kind == "gztar":
        with tarfile.open(archive) as tf:
            assert any(m.name.endswith("FudanPed00001.txt") for m in tf.getmembers())
    result = run_cli("dataset", "import", archive, "--format", "pennfudan", "--out", tmp_path / "out", "-q")
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "out" / "annotations.json").read_text())
    assert data["annotations"][0]["bbox"] == [4, 5, 26, 55]
    assert data["categories"] == [{"id": 1, "name": "pedestrian", "supercategory": "person"}]


def test_annotation_without_boxes_is_an_error_naming_the_file(tmp_path: Path) -> None:
    src = build_pennfudan(tmp_path / "PennFudanPed", {"FudanPed00001": [(5, 6, 30, 60)], "FudanPed00002": []})
    out = tmp_path / "out"
    with pytest.raises(DatasetError, match="FudanPed00002.txt: no 'Bounding box"):
        import_dataset(src, "pennfudan", out)
    assert not out.exists()
    result = run_cli("dataset", "import", src, "--format", "pennfudan", "--out", out)
    assert_clean_failure(result, "FudanPed00002.txt", "every Penn-Fudan image shows a pedestrian")
    assert not out.exists()
    assert not list(tmp_path.glob(".out.importing-*")), "the staging folder must be cleaned up"


def test_garbled_box_line_names_file_and_line(tmp_path: Path) -> None:
    src = build_pennfudan(tmp_path / "PennFudanPed", {"FudanPed00001": [(5, 6, 30, 60)]})
    ann = src / "Annotation" / "FudanPed00001.txt"
    ann.write_text(ann.read_text().replace("(5, 6) - (30, 60)", "(5, 6) - (30 60)"))
    with pytest.raises(DatasetError, match=r"FudanPed00001.txt:11: cannot parse"):
        import_dataset(src, "pennfudan", tmp_path / "out")


def test_refuses_an_out_folder_that_holds_a_dataset(tmp_path: Path) -> None:
    src = build_pennfudan(tmp_path / "PennFudanPed", {"FudanPed00001": [(5, 6, 30, 60)]})
    out = tmp_path / "out"
    out.mkdir()
    (out / "annotations.json").write_text('{"images": []}')
    result = run_cli("dataset", "import", src, "--format", "pennfudan", "--out", out)
    assert_clean_failure(result, "already holds a dataset")
    assert (out / "annotations.json").read_text() == '{"images": []}'


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"\x89PNG\r\n\x1a\ngarbage", "not a readable image"), (b"", "image file is empty (0 bytes)")],
)
def test_corrupt_or_empty_png_is_a_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    src = build_pennfudan(tmp_path / "PennFudanPed", {"FudanPed00001": [(5, 6, 30, 60)]})
    (src / "PNGImages" / "FudanPed00001.png").write_bytes(content)
    result = run_cli("dataset", "import", src, "--format", "pennfudan", "--out", tmp_path / "out")
    assert_clean_failure(result, f"FudanPed00001.png: {message}")
    assert not (tmp_path / "out").exists()


def test_unknown_format_lists_the_formats(tmp_path: Path) -> None:
    result = run_cli("dataset", "import", tmp_path, "--format", "yolo", "--out", tmp_path / "out")
    assert_clean_failure(
        result, "'yolo' is not one of", "'pennfudan'", "'kitti'", "'coco'", "'voc'", "'tfds'"
    )
    with pytest.raises(DatasetError, match="use one of: pennfudan, kitti, coco, voc, tfds"):
        import_dataset(tmp_path, "yolo", tmp_path / "out")
