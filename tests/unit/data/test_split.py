import json
import os
from pathlib import Path

import pytest

from modelopsx.data.format import Box, ImageRecord, load_dataset
from modelopsx.data.split import assign_split, group_unit, split_dataset
from modelopsx.errors import DatasetError
from modelopsx.hash_labels import short_hash
from tests.unit.data.data_io_fixtures import assert_clean_failure, make_dataset, run_cli, write_image


def _membership(out: Path) -> dict[str, str]:
    return {
        img.file_name: name for name in ("train", "val", "test") for img in load_dataset(out / name).images
    }


def test_groups_never_span_splits_and_counts_add_up(tmp_path: Path) -> None:
    groups = [f"seq{i // 3}" for i in range(60)]  # 20 groups of 3 frames
    make_dataset(tmp_path / "ds", n_images=60, size=(32, 24), groups=groups, boxes_per_image=2)
    summary = split_dataset(tmp_path / "ds", tmp_path / "split", val=0.2, test=0.2, salt="s")
    counts = summary["counts"]
    assert sum(c["images"] for c in counts.values()) == 60
    assert sum(c["boxes"] for c in counts.values()) == 120
    assert all(counts[name]["images"] > 0 for name in ("train", "val", "test"))
    group_split: dict[str, set[str]] = {}
    for name in ("train", "val", "test"):
        part = load_dataset(tmp_path / "split" / name)
        assert {b.image_id for b in part.annotations} <= {img.id for img in part.images}
        for img in part.images:
            group_split.setdefault(img.group, set()).add(name)
            assert img.group and assign_split(img.group, 0.2, 0.2, "s") == name
    assert all(len(s) == 1 for s in group_split.values())
    written = json.loads((tmp_path / "split" / "split.json").read_text())
    assert written["counts"] == counts and written["hashes"] == summary["hashes"]
    assert set(summary["hashes"]) == {"train", "val", "test"}
    src = tmp_path / "ds" / "images" / "img_0000.jpg"
    dst = next((tmp_path / "split").glob("*/images/img_0000.jpg"))
    assert os.stat(src).st_ino == os.stat(dst).st_ino, "images are hardlinked on one filesystem"


def test_adding_images_never_moves_existing_ones(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "ds", n_images=40, size=(16, 16))
    split_dataset(tmp_path / "ds", tmp_path / "before")
    for i in range(40, 80):
        name = f"img_{i:04d}.jpg"
        write_image(ds.images_dir / name, 16, 16, seed=i)
        ds.images.append(ImageRecord(id=i + 1, file_name=name, width=16, height=16))
        ds.annotations.append(Box(id=1000 + i, image_id=i + 1, bbox=[1, 1, 5, 5]))
    ds.save()
    split_dataset(tmp_path / "ds", tmp_path / "after")
    before, after = _membership(tmp_path / "before"), _membership(tmp_path / "after")
    assert len(after) == 80
    assert all(after[name] == split for name, split in before.items())


def test_hash_is_uniform_and_salt_changes_assignment() -> None:
    units = [group_unit(f"g{i}") for i in range(4000)]
    assert all(0.0 <= u < 1.0 for u in units)
    assert 0.13 < sum(u < 0.15 for u in units) / len(units) < 0.17
    assert [assign_split(f"g{i}", 0.3, 0.3) for i in range(50)] != [
        assign_split(f"g{i}", 0.3, 0.3, salt="other") for i in range(50)
    ]


@pytest.mark.parametrize(
    ("val", "test", "message"),
    [
        ("0.6", "0.5", "nothing is left for train"),
        ("1.2", "0", "outside [0, 1)"),
        ("0.1", "-0.1", "outside [0, 1)"),
    ],
)
def test_bad_fractions_fail_cleanly(tmp_path: Path, val: str, test: str, message: str) -> None:
    make_dataset(tmp_path / "ds", n_images=2)
    result = run_cli(
        "dataset", "split", tmp_path / "ds", "--out", tmp_path / "out", "--val", val, "--test", test
    )
    assert_clean_failure(result, message)
    assert not (tmp_path / "out").exists()


def test_cli_prints_summary_and_refuses_existing_output(tmp_path: Path) -> None:
    make_dataset(tmp_path / "ds", n_images=12)
    result = run_cli(
        "dataset",
        "split",
        tmp_path / "ds",
        "--out",
        tmp_path / "out",
        "--val",
        "0.25",
        "--test",
        "0.25",
        "--salt",
        "x",
    )
    assert result.returncode == 0, result.stderr
    for word in ("train", "val", "test", "images", "boxes"):
        assert word in result.stdout
    summary = json.loads((tmp_path / "out" / "split.json").read_text())
    assert short_hash(summary["hashes"]["train"]) in result.stdout  # shown as everywhere: 12 digits
    again = run_cli("dataset", "split", tmp_path / "ds", "--out", tmp_path / "out")
    assert_clean_failure(again, "already holds")
    assert json.loads((tmp_path / "out" / "split.json").read_text()) == summary


def test_missing_image_names_the_file(tmp_path: Path) -> None:
    make_dataset(tmp_path / "ds", n_images=3)
    (tmp_path / "ds" / "images" / "img_0001.jpg").unlink()
    with pytest.raises(DatasetError, match="img_0001.jpg"):
        split_dataset(tmp_path / "ds", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.splitting-*"))


def test_duplicate_image_ids_are_refused(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "ds", n_images=3)
    ds.images[2].id = 1
    ds.save()
    result = run_cli("dataset", "split", tmp_path / "ds", "--out", tmp_path / "out")
    assert_clean_failure(result, "duplicate image id 1", "dataset validate")
