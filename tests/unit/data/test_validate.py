import json
from pathlib import Path

import pytest

from modelopsx.data.image_integrity import check_image_bytes
from modelopsx.data.validate import validate_dataset
from tests.unit.data.data_io_fixtures import (
    assert_clean_failure,
    edit_annotations,
    image_bytes,
    make_dataset,
    run_cli,
)


def test_clean_dataset_passes(tmp_path: Path) -> None:
    make_dataset(tmp_path / "ds")
    report = validate_dataset(tmp_path / "ds")
    assert report.ok and not report.errors and not report.warnings
    assert (report.images_checked, report.boxes_checked) == (4, 4)
    result = run_cli("dataset", "validate", tmp_path / "ds", "-q")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error(s)" in result.stdout


def test_every_bad_input_is_reported_with_file_and_entry(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    make_dataset(root, n_images=8, size=(64, 48))
    images = root / "images"
    data = (images / "img_0000.jpg").read_bytes()
    (images / "img_0000.jpg").write_bytes(data[: len(data) // 2])  # truncated JPEG
    (images / "img_0001.jpg").write_bytes(b"")  # zero-byte
    header_garbled = bytearray((images / "img_0002.jpg").read_bytes())
    header_garbled[2:120] = bytes((i * 37 + 11) % 256 for i in range(118))
    (images / "img_0002.jpg").write_bytes(bytes(header_garbled))  # corrupt JPEG
    (images / "img_0003.jpg").unlink()  # missing
    (images / "stray.png").write_bytes(image_bytes(8, 8, ".png"))

    def corrupt(d: dict) -> None:  # type: ignore[type-arg]
        d["images"][4]["width"] = 65  # size mismatch
        d["annotations"][5]["bbox"] = [10, 10, -4, 20]  # negative width
        d["annotations"][6]["bbox"] = [100, 100, 10, 10]  # fully outside the 64x48 image
        d["annotations"][7]["bbox"] = [50, 40, 20, 10]  # slightly outside: clipped
        d["annotations"].append({"id": 99, "image_id": 777, "bbox": [1, 1, 5, 5]})  # unknown image id
        d["images"].append(dict(d["images"][7]))  # duplicate image id 8 (and duplicate file)

    edit_annotations(root, corrupt)

    report = validate_dataset(root)
    assert not report.ok
    text = "\n".join(report.errors)
    for expected in [
        "images/img_0000.jpg: images[0] id=1: truncated or corrupt JPEG",
        "images/img_0001.jpg: images[1] id=2: empty file (0 bytes)",
        "images/img_0002.jpg: images[2] id=3: not a decodable image",
        "images/img_0003.jpg: images[3] id=4: image file missing",
        "images/img_0004.jpg: images[4] id=5: size mismatch: annotations say 65x48, the image is 64x48",
        "annotations.json: annotations[5] id=6 image_id=6: box [10, 10, -4, 20] has non-positive size",
        "annotations.json: annotations[6] id=7 image_id=7: box [100, 100, 10, 10] lies fully outside",
        "annotations.json: annotations[8] id=99 image_id=777: unknown image id 777",
        "annotations.json: images[8] id=8: duplicate image id 8 (first at images[7])",
    ]:
        assert expected in text, f"{expected!r} not in:\n{text}"
    warnings = "\n".join(report.warnings)
    assert "annotations[7] id=8 image_id=8: box [50, 40, 20, 10] extends past" in warnings
    assert "--quarantine clips it to [50.0, 40.0, 14.0, 8.0]" in warnings
    assert "images/stray.png: file is not referenced" in warnings
    before = (root / "annotations.json").read_text()

    result = run_cli("dataset", "validate", root, "-q")
    assert_clean_failure(result, "validation error(s)", "--quarantine")
    assert (root / "annotations.json").read_text() == before, "plain validation never writes"


def test_annotations_not_json_is_fatal_even_with_quarantine(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    make_dataset(root, n_images=1)
    (root / "annotations.json").write_text("images: [oops")
    report = validate_dataset(root, quarantine=True)
    assert report.fatal and not report.ok
    assert "annotations.json: not valid JSON (line 1" in report.errors[0]
    for args in (("-q",), ("--quarantine", "-q")):
        result = run_cli("dataset", "validate", root, *args)
        assert_clean_failure(result, "not valid JSON")
    assert (root / "annotations.json").read_text() == "images: [oops"


@pytest.mark.parametrize(
    "entry", [{"id": 1, "file_name": "a.jpg"}, {"id": 1, "file_name": "../x.jpg", "width": 4, "height": 4}]
)
def test_malformed_image_entries(tmp_path: Path, entry: dict) -> None:  # type: ignore[type-arg]
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "annotations.json").write_text(json.dumps({"images": [entry], "annotations": []}))
    report = validate_dataset(root)
    assert not report.ok
    assert report.errors[0].startswith("annotations.json: images[0]")


@pytest.mark.parametrize("size", [(50_000, 50_000), (10_000, 10_000)], ids=["pil-bomb", "over-the-limit"])
def test_an_image_declaring_a_huge_size_is_refused_before_decoding(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    from tests.unit.data.data_io_fixtures import png_declaring

    root = tmp_path / "ds"
    make_dataset(root, n_images=2)
    (root / "images" / "img_0000.jpg").write_bytes(png_declaring(*size))
    error, _, _ = check_image_bytes(png_declaring(*size))
    assert error is not None and "refused before decoding" in error
    report = validate_dataset(root)
    assert [e for e in report.errors if "refused before decoding" in e] == [
        f"images/img_0000.jpg: images[0] id=1: {error}"
    ]
    result = run_cli("dataset", "validate", root, "-q")
    assert_clean_failure(result, "refused before decoding")
    assert result.returncode == 2
