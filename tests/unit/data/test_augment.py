from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from modelopsx.data.augment import (
    AugmentParams,
    adjust_brightness_contrast,
    augment_dataset,
    augment_example,
    hflip,
    rotate,
    scale_jitter,
)
from modelopsx.data.format import Box, Dataset, ImageRecord, load_dataset
from modelopsx.data.hashing import dataset_version_hash
from modelopsx.data.synth import generate_synthetic
from modelopsx.errors import DatasetError

W, H = 200, 120
RECT = (60.0, 30.0, 90.0, 100.0)  # x1, y1, x2, y2 (exclusive ends)


def _scene() -> np.ndarray:
    img = np.full((H, W, 3), 90, np.uint8)
    img[int(RECT[1]) : int(RECT[3]), int(RECT[0]) : int(RECT[2])] = (0, 0, 255)  # a red rectangle (BGR)
    return img


def _red_box(img: np.ndarray) -> tuple[float, float, float, float]:
    red = (img[:, :, 2] > 160) & (img[:, :, 1] < 100)
    ys, xs = np.nonzero(red)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def test_hflip_moves_box_with_pixels() -> None:
    img, boxes = hflip(_scene(), np.array([RECT]))
    assert np.allclose(boxes[0], _red_box(img))
    assert np.allclose(boxes[0], (W - 90, 30, W - 60, 100))


@pytest.mark.parametrize("angle", [-12.0, 7.0, 20.0])
def test_rotation_corner_refit_matches_rotated_rectangle(angle: float) -> None:
    img, loose = rotate(_scene(), np.array([RECT]), angle, tighten=False)
    assert np.allclose(loose[0], _red_box(img), atol=1.5)
    _, tight = rotate(_scene(), np.array([RECT]), angle, tighten=True)
    centre = lambda b: ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)  # noqa: E731
    assert np.allclose(centre(tight[0]), centre(loose[0]))
    assert tight[0][0] > loose[0][0] and tight[0][2] < loose[0][2]  # tightened inside the corner fit
    assert tight[0][1] >= loose[0][1] and tight[0][3] <= loose[0][3]


def test_positive_angle_turns_counter_clockwise() -> None:
    img = np.zeros((101, 101, 3), np.uint8)
    img[48:53, 80:90] = 255  # a blob right of the centre
    out, _ = rotate(img, np.zeros((0, 4)), 90.0)
    ys, xs = np.nonzero(out[:, :, 0] > 128)
    assert ys.mean() < 30 and abs(xs.mean() - 50) < 3  # it went up


def test_scale_jitter_scales_and_shifts_box() -> None:
    img, boxes = scale_jitter(_scene(), np.array([RECT]), 1.5, shift=(0.1, -0.05))
    assert np.allclose(boxes[0], _red_box(img), atol=1.5)
    assert np.isclose(boxes[0][3] - boxes[0][1], 1.5 * (RECT[3] - RECT[1]))


def test_boxes_leaving_the_image_are_clipped_ignored_or_dropped() -> None:
    boxes = np.array([RECT, (5.0, 10.0, 25.0, 60.0), (170.0, 10.0, 195.0, 60.0)])
    # shift right by 20% of the width: the third box leaves entirely, the first stays whole
    out, res = augment_example(_scene(), boxes, AugmentParams(shift=(0.2, 0.0)))
    assert list(res.source_index) == [0, 1]
    assert np.allclose(res.boxes[0], (100, 30, 130, 100)) and not res.ignore[0]
    # shift left by 20 px: box 1 keeps 5 of its 20 px width -> becomes an ignore region, clipped at x=0
    _, res = augment_example(_scene(), boxes, AugmentParams(shift=(-0.1, 0.0)))
    row = list(res.source_index).index(1)
    assert res.boxes[row][0] == 0 and res.ignore[row] and res.kept_fraction[row] < 0.3
    assert not res.ignore[list(res.source_index).index(0)]
    assert (res.boxes[:, [0, 2]] >= 0).all() and (res.boxes[:, [0, 2]] <= W).all()


def test_brightness_and_contrast() -> None:
    img = _scene()
    brighter = adjust_brightness_contrast(img, 20.0, 1.0)
    unsaturated = img < 235
    assert np.allclose((brighter.astype(int) - img.astype(int))[unsaturated], 20, atol=1)
    assert (brighter[~unsaturated] == 255).all()
    flat = adjust_brightness_contrast(img, 0.0, 0.0)
    assert flat.std(axis=(0, 1)).max() < 1.0


def _rect_dataset(root: Path) -> Dataset:
    (root / "images").mkdir(parents=True)
    ds = Dataset(root=root)
    for i in range(2):
        cv2.imwrite(str(root / "images" / f"r{i}.png"), _scene())
        ds.images.append(ImageRecord(i + 1, f"r{i}.png", W, H, group=f"g{i}"))
        ds.annotations.append(Box(i + 1, i + 1, [RECT[0], RECT[1], RECT[2] - RECT[0], RECT[3] - RECT[1]]))
    ds.save()
    return ds


def test_augment_dataset_boxes_follow_pixels(tmp_path: Path) -> None:
    _rect_dataset(tmp_path / "src")
    out = augment_dataset(tmp_path / "src", tmp_path / "out", copies=3, seed=4)
    assert len(out.images) == 2 * 4
    by_image = out.boxes_by_image()
    for image in out.images[2:]:
        assert image.extra["augmented_from"].startswith("r") and image.group in ("g0", "g1")
        pixels = cv2.imread(str(out.image_path(image)))
        (box,) = by_image[image.id]
        x1, y1, x2, y2 = box.xyxy
        px1, py1, px2, py2 = _red_box(pixels)
        inter = max(0, min(x2, px2) - max(x1, px1)) * max(0, min(y2, py2) - max(y1, py1))
        union = (x2 - x1) * (y2 - y1) + (px2 - px1) * (py2 - py1) - inter
        assert inter / union > 0.7
        assert x1 >= px1 - 1.5 and x2 <= px2 + 1.5 and y1 >= py1 - 1.5 and y2 <= py2 + 1.5


def test_augment_dataset_is_deterministic_and_records_its_source(tmp_path: Path) -> None:
    generate_synthetic(tmp_path / "src", 3, seed=2, size=(96, 64))
    a = augment_dataset(tmp_path / "src", tmp_path / "a", copies=2, seed=9)
    augment_dataset(tmp_path / "src", tmp_path / "b", copies=2, seed=9)
    augment_dataset(tmp_path / "src", tmp_path / "c", copies=2, seed=10)
    info = json.loads((tmp_path / "a/annotations.json").read_text())["info"]
    assert info["source"] == {
        "path": str((tmp_path / "src").resolve()),
        "version": dataset_version_hash(tmp_path / "src"),
    }
    assert (tmp_path / "a/annotations.json").read_bytes() == (tmp_path / "b/annotations.json").read_bytes()
    augmented = [img for img in a.images if "augmented_from" in img.extra]
    assert len(augmented) == 6

    def image_bytes(name: str, image: ImageRecord) -> bytes:
        return (tmp_path / name / "images" / image.file_name).read_bytes()

    same = [image_bytes("a", i) == image_bytes("b", i) for i in augmented]
    other = [image_bytes("a", i) == image_bytes("c", i) for i in augmented]
    assert all(same) and not any(other)
    loaded = load_dataset(tmp_path / "a")
    for box in loaded.annotations:
        x1, y1, x2, y2 = box.xyxy
        assert 0 <= x1 < x2 <= 96 and 0 <= y1 < y2 <= 64


def test_augment_dataset_refuses_existing_output_and_negative_copies(tmp_path: Path) -> None:
    _rect_dataset(tmp_path / "src")
    augment_dataset(tmp_path / "src", tmp_path / "out", copies=1, seed=0)
    with pytest.raises(DatasetError, match="already holds a dataset"):
        augment_dataset(tmp_path / "src", tmp_path / "out", copies=1, seed=1)
    with pytest.raises(DatasetError):
        augment_dataset(tmp_path / "src", tmp_path / "neg", copies=-1, seed=0)
