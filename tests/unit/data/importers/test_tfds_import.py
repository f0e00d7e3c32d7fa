"""TFDS importer against `tfds.testing.mock_data` with hand-built examples (no download possible here).

The examples follow each builder's feature spec; images are real encoded bytes, as `SkipDecoding` yields them.
"""

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelopsx.data.format import load_dataset
from modelopsx.data.importers import import_dataset
from modelopsx.errors import DatasetError
from tests.unit.data.data_io_fixtures import assert_clean_failure, image_bytes, run_cli

tf = pytest.importorskip("tensorflow")
tfds = pytest.importorskip("tensorflow_datasets")

W, H = 100, 50


def _as_dataset_fn(examples: list[dict[str, Any]]):  # type: ignore[no-untyped-def]
    def as_dataset(self, split, decoders=None, **kwargs):  # type: ignore[no-untyped-def]
        assert decoders is not None and "image" in decoders, "the importer must keep the encoded bytes"

        def spec_of(value: Any) -> Any:  # variable-length object sequences, like the real features
            t = tf.constant(value)
            return tf.TensorSpec([None, *t.shape[1:]] if t.shape.rank else [], t.dtype)

        spec = tf.nest.map_structure(spec_of, examples[0])
        return tf.data.Dataset.from_generator(lambda: iter(examples), output_signature=spec)

    return as_dataset


def test_kitti_boxes_are_unflipped(tmp_path: Path) -> None:
    # Pedestrian at left=20, top=10, right=30, bottom=40 stored the TFDS way: y from the bottom.
    objects = {
        "type": np.array([3, 0, 4], np.int64),  # Pedestrian, Car, Person_sitting
        "truncated": np.array([0.25, 0.0, 0.0], np.float32),
        "occluded": np.array([1, 0, 0], np.int64),
        "alpha": np.zeros(3, np.float32),
        "bbox": np.array(
            [
                [(H - 40) / H, 20 / W, (H - 10) / H, 30 / W],
                [0.1, 0.5, 0.5, 0.9],
                [(H - 50) / H, 0.0, (H - 30) / H, 10 / W],
            ],
            np.float32,
        ),
        "dimensions": np.zeros((3, 3), np.float32),
        "location": np.zeros((3, 3), np.float32),
        "rotation_y": np.zeros(3, np.float32),
    }
    png = image_bytes(W, H, ".png")
    example = {"image": png, "image/file_name": b"000042.png", "objects": objects}
    with tfds.testing.mock_data(as_dataset_fn=_as_dataset_fn([example])):
        import_dataset(
            None, "tfds", tmp_path / "out", name="kitti", split="train", data_dir=tmp_path / "tfds"
        )
    ds = load_dataset(tmp_path / "out")
    assert [(img.file_name, img.width, img.height, img.group) for img in ds.images] == [
        ("000042.png", W, H, "000042")
    ]
    assert (tmp_path / "out" / "images" / "000042.png").read_bytes() == png
    ped, sitting = ds.annotations
    assert ped.bbox == pytest.approx([20, 10, 10, 30], abs=1e-3)
    assert (ped.visibility, ped.ignore) == (0.65, 0)
    assert ped.truncation == pytest.approx(0.25)
    assert sitting.bbox == pytest.approx([0, 30, 10, 20], abs=1e-3) and sitting.ignore == 1


def test_voc_person_and_difficult(tmp_path: Path) -> None:
    # VOC person is class 14; corners are the 1-based VOC pixels divided by the size.
    objects = {
        "label": np.array([14, 8, 14], np.int64),
        "bbox": np.array(
            [[11 / H, 21 / W, 40 / H, 50 / W], [0.1, 0.1, 0.2, 0.2], [0.0, 0.6, 0.5, 0.8]], np.float32
        ),
        "pose": np.zeros(3, np.int64),
        "is_truncated": np.array([True, False, False]),
        "is_difficult": np.array([False, False, True]),
    }
    example = {
        "image": image_bytes(W, H, ".jpg"),
        "image/filename": b"000005.jpg",
        "objects": objects,
        "labels": np.array([14, 8], np.int64),
        "labels_no_difficult": np.array([14, 8], np.int64),
    }
    with tfds.testing.mock_data(as_dataset_fn=_as_dataset_fn([example])):
        import_dataset(None, "tfds", tmp_path / "out", name="voc/2007", split="validation")
    ds = load_dataset(tmp_path / "out")
    assert ds.images[0].file_name == "000005.jpg"
    np.testing.assert_allclose(
        [b.bbox for b in ds.annotations], [[20, 10, 30, 30], [59, 0, 21, 25]], atol=1e-3
    )
    assert [(b.ignore, b.truncation) for b in ds.annotations] == [(0, 1.0), (1, 0.0)]


def test_coco_person_and_crowd(tmp_path: Path) -> None:
    objects = {
        "id": np.array([1, 2, 3], np.int64),
        "area": np.array([10, 10, 10], np.int64),
        "bbox": np.array([[0.2, 0.1, 0.6, 0.3], [0.0, 0.0, 1.0, 1.0], [0.1, 0.5, 0.9, 0.9]], np.float32),
        "label": np.array([0, 2, 0], np.int64),  # person, car, person
        "is_crowd": np.array([False, False, True]),
    }
    examples = [
        {
            "image": image_bytes(W, H, ".jpg"),
            "image/filename": b"000000000139.jpg",
            "image/id": np.int64(139),
            "objects": objects,
        },
        {
            "image": image_bytes(W, H, ".jpg", seed=1),
            "image/filename": b"000000000285.jpg",
            "image/id": np.int64(285),
            "objects": {k: v[1:2] for k, v in objects.items()},
        },
    ]
    with tfds.testing.mock_data(as_dataset_fn=_as_dataset_fn(examples)):
        import_dataset(None, "tfds", tmp_path / "out", name="coco/2017", split="validation")
    ds = load_dataset(tmp_path / "out")
    assert len(ds.images) == 2
    np.testing.assert_allclose(
        [b.bbox for b in ds.annotations], [[10, 10, 20, 20], [50, 5, 40, 40]], atol=1e-3
    )
    assert [(b.iscrowd, b.ignore) for b in ds.annotations] == [(0, 0), (1, 1)]
    assert ds.boxes_by_image()[2] == [], "an image with only a car is kept person-free"


def test_unsupported_name_and_unprepared_data_are_clear(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="is not supported"):
        import_dataset(None, "tfds", tmp_path / "out", name="mnist")
    result = run_cli(
        "dataset",
        "import",
        "--format",
        "tfds",
        "--name",
        "kitti",
        "--data-dir",
        tmp_path / "empty",
        "--out",
        tmp_path / "out",
    )
    assert_clean_failure(result, "TFDS could not load 'kitti'", "nothing is downloaded at run time")
    assert not (tmp_path / "out").exists()
