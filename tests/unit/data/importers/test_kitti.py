import shutil
from pathlib import Path

import pytest

from modelopsx.data.format import load_dataset
from modelopsx.data.importers import import_dataset
from modelopsx.data.importers.kitti import VISIBILITY_FROM_OCCLUDED
from modelopsx.errors import DatasetError
from tests.unit.data.data_io_fixtures import assert_clean_failure, run_cli, write_image


def kitti_line(
    kind: str, box: tuple[float, float, float, float], truncated: float = 0.0, occluded: int = 0
) -> str:
    left, t, r, b = box
    return (
        f"{kind} {truncated:.2f} {occluded} -0.20 {left:.2f} {t:.2f} {r:.2f} {b:.2f} "
        "1.89 0.48 1.20 1.84 1.47 8.41 0.01"
    )


def build_kitti(root: Path, labels: dict[str, list[str]], size: tuple[int, int] = (160, 60)) -> Path:
    """The KITTI object layout: training/image_2/<id>.png and training/label_2/<id>.txt."""
    for k, (stem, lines) in enumerate(labels.items()):
        write_image(root / "training" / "image_2" / f"{stem}.png", *size, seed=k)
        (root / "training" / "label_2").mkdir(parents=True, exist_ok=True)
        (root / "training" / "label_2" / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_import_maps_classes_visibility_and_truncation(tmp_path: Path) -> None:
    src = build_kitti(
        tmp_path / "kitti",
        {
            "000000": [
                kitti_line("Pedestrian", (10.5, 5, 30.5, 55), truncated=0.3, occluded=2),
                kitti_line("Car", (40, 10, 90, 50)),
                kitti_line("Person_sitting", (100, 20, 120, 50), occluded=1),
                kitti_line("DontCare", (130, 0, 150, 20)),
                kitti_line("Cyclist", (60, 10, 70, 40)),
            ],
            "000001": [kitti_line("Car", (40, 10, 90, 50))],
        },
    )
    import_dataset(src, "kitti", tmp_path / "out")
    ds = load_dataset(tmp_path / "out")
    assert [img.file_name for img in ds.images] == ["000000.png", "000001.png"]
    assert [img.group for img in ds.images] == ["000000", "000001"]
    ped, sitting, dontcare = ds.annotations
    assert ped.bbox == [10.5, 5, 20, 50]
    assert ped.visibility == VISIBILITY_FROM_OCCLUDED[2] == 0.35
    assert ped.truncation == pytest.approx(0.3)
    assert (ped.ignore, ped.iscrowd) == (0, 0)
    assert (sitting.ignore, sitting.iscrowd, sitting.bbox) == (1, 0, [100, 20, 20, 30])
    assert (dontcare.ignore, dontcare.iscrowd) == (1, 1)
    assert all(b.image_id == 1 for b in ds.annotations), "the Car-only image is kept person-free"


def test_fourteen_fields_names_file_and_line(tmp_path: Path) -> None:
    bad = " ".join(kitti_line("Pedestrian", (1, 1, 20, 40)).split()[:14])
    src = build_kitti(tmp_path / "kitti", {"000007": [kitti_line("Car", (1, 1, 20, 40)), bad]})
    out = tmp_path / "out"
    with pytest.raises(DatasetError, match=r"000007.txt:2: expected 15 fields .* found 14"):
        import_dataset(src, "kitti", out)
    result = run_cli("dataset", "import", src, "--format", "kitti", "--out", out)
    assert_clean_failure(result, "000007.txt:2: expected 15 fields", "found 14")
    assert not out.exists()


def test_bad_occluded_value_and_missing_label_are_clear(tmp_path: Path) -> None:
    src = build_kitti(tmp_path / "kitti", {"000000": [kitti_line("Pedestrian", (1, 1, 20, 40), occluded=5)]})
    with pytest.raises(DatasetError, match="000000.txt:1: occluded must be 0, 1, 2 or 3"):
        import_dataset(src, "kitti", tmp_path / "out")
    (src / "training" / "label_2" / "000000.txt").unlink()
    with pytest.raises(DatasetError, match="label file missing"):
        import_dataset(src, "kitti", tmp_path / "out")


def test_import_from_tar_gz(tmp_path: Path) -> None:
    build_kitti(tmp_path / "src", {"000003": [kitti_line("Pedestrian", (150, 0, 175, 70))]})
    archive = shutil.make_archive(str(tmp_path / "data_object"), "gztar", root_dir=tmp_path / "src")
    result = run_cli("dataset", "import", archive, "--format", "kitti", "--out", tmp_path / "out", "-q")
    assert result.returncode == 0, result.stderr
    ds = load_dataset(tmp_path / "out")
    assert ds.annotations[0].bbox == [150, 0, 10, 60], "a box past the border is clipped to the image"


def test_tracking_layout_groups_frames_by_sequence(tmp_path: Path) -> None:
    root = tmp_path / "tracking" / "training"
    for seq, frames in (("0000", 3), ("0001", 2)):
        for f in range(frames):
            write_image(root / "image_02" / seq / f"{f:06d}.png", 80, 40, seed=f)
    (root / "label_02").mkdir(parents=True)
    (root / "label_02" / "0000.txt").write_text(
        f"0 1 {kitti_line('Pedestrian', (1, 2, 11, 32), occluded=1)}\n"
        f"2 1 {kitti_line('Pedestrian', (3, 2, 13, 32))}\n2 -1 {kitti_line('DontCare', (50, 0, 70, 10))}\n"
    )
    (root / "label_02" / "0001.txt").write_text("")
    import_dataset(tmp_path / "tracking", "kitti", tmp_path / "out")
    ds = load_dataset(tmp_path / "out")
    assert len(ds.images) == 5
    assert {img.group for img in ds.images[:3]} == {"kitti-seq-0000"}
    assert {img.group for img in ds.images[3:]} == {"kitti-seq-0001"}
    assert ds.images[0].file_name == "0000_000000.png"
    by_image = ds.boxes_by_image()
    assert [b.visibility for b in by_image[1]] == [0.65]
    assert by_image[2] == []
    assert [(b.bbox, b.ignore) for b in by_image[3]] == [([3, 2, 10, 30], 0), ([50, 0, 20, 10], 1)]


def test_devkit_mapping_groups_images_by_drive(tmp_path: Path) -> None:
    src = build_kitti(
        tmp_path / "kitti", {f"{k:06d}": [kitti_line("Pedestrian", (1, 1, 20, 40))] for k in range(3)}
    )
    mapping = tmp_path / "kitti" / "devkit_object" / "mapping"
    mapping.mkdir(parents=True)
    (mapping / "train_mapping.txt").write_text(
        "2011_09_26 2011_09_26_drive_0001_sync 0000000000\n2011_09_26 2011_09_26_drive_0002_sync 0000000007\n"
    )
    (mapping / "train_rand.txt").write_text("2,1,2\n")
    import_dataset(src, "kitti", tmp_path / "out")
    groups = [img.group for img in load_dataset(tmp_path / "out").images]
    assert groups == [
        "kitti-2011_09_26_drive_0002_sync",
        "kitti-2011_09_26_drive_0001_sync",
        "kitti-2011_09_26_drive_0002_sync",
    ]


@pytest.mark.parametrize(
    "field, value, message",
    [
        (2, "inf", "occluded is 'inf', not a finite decimal number"),
        (2, "1e400", "occluded is '1e400', not a finite decimal number"),
        (2, "nan", "occluded is 'nan'"),
        (2, "1.5", "occluded is '1.5', not a whole number"),
        (1, "-inf", "truncated is '-inf'"),
        (4, "٣", "left is '٣'"),
    ],
)
def test_numbers_that_are_not_finite_ascii_decimals_are_clear_errors(
    tmp_path: Path, field: int, value: str, message: str
) -> None:
    fields = kitti_line("Pedestrian", (1, 1, 20, 40)).split()
    fields[field] = value
    src = build_kitti(tmp_path / "kitti", {"000000": [" ".join(fields)]})
    with pytest.raises(DatasetError, match="000000.txt:1: ") as exc:
        import_dataset(src, "kitti", tmp_path / "out")
    assert message in exc.value.message and not (tmp_path / "out").exists()


@pytest.mark.parametrize("frame", ["²", "٣", "3x"])
def test_tracking_frames_must_be_named_with_ascii_digits(tmp_path: Path, frame: str) -> None:
    """`٣.png` once imported as frame 3 (str.isdigit and int() read other scripts' digits); `².png` was a
    traceback."""
    root = tmp_path / "tracking" / "training"
    write_image(root / "image_02" / "0000" / f"{frame}.png", 80, 40)
    (root / "label_02").mkdir(parents=True)
    (root / "label_02" / "0000.txt").write_text(f"3 1 {kitti_line('Pedestrian', (1, 2, 11, 32))}\n")
    result = run_cli(
        "dataset", "import", tmp_path / "tracking", "--format", "kitti", "--out", tmp_path / "out"
    )
    assert_clean_failure(result, f"frame {frame!r} is not a number of ASCII digits")
    assert result.returncode == 2 and not (tmp_path / "out").exists()
    (root / "label_02" / "0000.txt").write_text(f"٣ 1 {kitti_line('Pedestrian', (1, 2, 11, 32))}\n")
    with pytest.raises(DatasetError, match="0000.txt:1: frame '٣' is not a number of ASCII digits"):
        import_dataset(tmp_path / "tracking", "kitti", tmp_path / "out")
