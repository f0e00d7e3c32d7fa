import json
from pathlib import Path

from modelopsx.data.format import load_dataset
from modelopsx.data.validate import validate_dataset
from tests.unit.data.data_io_fixtures import edit_annotations, make_dataset, run_cli


def test_quarantine_moves_bad_entries_out_and_keeps_everything(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    make_dataset(root, n_images=5)
    (root / "images" / "img_0001.jpg").write_bytes(b"")
    original_bytes = (root / "images" / "img_0002.jpg").read_bytes()

    def corrupt(d: dict) -> None:  # type: ignore[type-arg]
        d["annotations"][2]["bbox"] = [200, 200, 5, 5]  # image 3: box fully outside
        d["annotations"][3]["bbox"] = [60, 10, 10, 10]  # image 4: clipped to [60, 10, 4, 10]
        d["annotations"].append({"id": 50, "image_id": 404, "bbox": [1, 1, 2, 2]})

    edit_annotations(root, corrupt)
    before = (root / "annotations.json").read_text()

    result = run_cli("dataset", "validate", root, "--quarantine", "-q")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "quarantined 2 image(s) and 3 annotation(s)" in " ".join(result.stdout.split())

    ds = load_dataset(root)
    assert [img.file_name for img in ds.images] == ["img_0000.jpg", "img_0003.jpg", "img_0004.jpg"]
    assert {b.image_id for b in ds.annotations} == {1, 4, 5}
    assert next(b for b in ds.annotations if b.image_id == 4).bbox == [60, 10, 4, 10]
    assert not (root / "images" / "img_0002.jpg").exists()
    assert (root / "quarantine" / "images" / "img_0002.jpg").read_bytes() == original_bytes
    assert (root / "quarantine" / "images" / "img_0001.jpg").exists()
    assert (root / "quarantine" / "annotations.before.json").read_text() == before
    report = json.loads((root / "quarantine" / "report.json").read_text())
    assert sorted(e["id"] for e in report["images"]) == [2, 3]
    assert sorted(a["id"] for a in report["annotations"]) == [2, 3, 50]
    assert report["moved_files"] == {
        "img_0001.jpg": "quarantine/images/img_0001.jpg",
        "img_0002.jpg": "quarantine/images/img_0002.jpg",
    }
    assert validate_dataset(root).ok, "the rewritten dataset validates cleanly"


def test_second_quarantine_never_overwrites_the_first(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    make_dataset(root, n_images=4)
    (root / "images" / "img_0000.jpg").write_bytes(b"")
    assert validate_dataset(root, quarantine=True).ok
    first_report = (root / "quarantine" / "report.json").read_text()
    clean = validate_dataset(root, quarantine=True)
    assert clean.ok and clean.quarantine_report is None, "a clean dataset is left alone"
    (root / "images" / "img_0001.jpg").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    second = validate_dataset(root, quarantine=True)
    assert second.ok and second.quarantine_report == root / "quarantine" / "report-2.json"
    assert (root / "quarantine" / "report.json").read_text() == first_report
    assert (root / "quarantine" / "annotations.before-2.json").is_file()
    assert [img.file_name for img in load_dataset(root).images] == ["img_0002.jpg", "img_0003.jpg"]
