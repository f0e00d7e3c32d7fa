import json
from pathlib import Path

import pytest

from modelopsx.data.hashing import dataset_version_hash
from modelopsx.errors import DatasetError
from tests.unit.data.data_io_fixtures import image_bytes, make_dataset


def test_hash_is_stable_and_content_addressed(tmp_path: Path) -> None:
    make_dataset(tmp_path / "a", n_images=3)
    make_dataset(tmp_path / "b", n_images=3)
    first = dataset_version_hash(tmp_path / "a")
    assert len(first) == 64 and first == dataset_version_hash(tmp_path / "b")

    ann = tmp_path / "a" / "annotations.json"
    ann.write_text(json.dumps(json.loads(ann.read_text()), indent=4, sort_keys=False))
    assert dataset_version_hash(tmp_path / "a") == first, "formatting is not content"

    (tmp_path / "a" / "images" / "unreferenced.png").write_bytes(image_bytes(4, 4, ".png"))
    assert dataset_version_hash(tmp_path / "a") == first, "files no entry references are not part of it"

    (tmp_path / "a" / "images" / "img_0001.jpg").write_bytes(image_bytes(64, 48, seed=99))
    changed_image = dataset_version_hash(tmp_path / "a")
    assert changed_image != first

    data = json.loads(ann.read_text())
    data["annotations"][0]["bbox"][0] += 1
    ann.write_text(json.dumps(data))
    assert dataset_version_hash(tmp_path / "a") not in (first, changed_image)


def test_missing_image_is_a_dataset_error(tmp_path: Path) -> None:
    make_dataset(tmp_path / "a", n_images=2)
    (tmp_path / "a" / "images" / "img_0000.jpg").unlink()
    with pytest.raises(DatasetError, match="img_0000.jpg: image file missing"):
        dataset_version_hash(tmp_path / "a")


def test_hash_ignores_the_descriptive_info_block(tmp_path: Path) -> None:
    """Split and augment record their (temporary) source folder in `info`: the same split made in two
    pipeline runs must hash the same, or the gate would never see "the same test split"."""
    make_dataset(tmp_path / "run1", n_images=2)
    make_dataset(tmp_path / "run2", n_images=2)
    for run in ("run1", "run2"):
        ann = tmp_path / run / "annotations.json"
        data = json.loads(ann.read_text())
        data["info"] = {"source": f"/tmp/{run}/in", "split": "test"}
        ann.write_text(json.dumps(data))
    assert dataset_version_hash(tmp_path / "run1") == dataset_version_hash(tmp_path / "run2")
