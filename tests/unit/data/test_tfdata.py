from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf

from modelopsx.data.format import Box, Dataset, ImageRecord
from modelopsx.data.synth import generate_synthetic
from modelopsx.data.tfdata import (
    build_input_pipeline,
    decode_image_for_model,
    skipped_images_counter,
    write_tfrecords,
)

W, H = 200, 120
RECT = (60.0, 30.0, 90.0, 100.0)


def _rect_dataset(root: Path, n: int = 4, extra_boxes: bool = False) -> Dataset:
    """Images with one red rectangle whose box is known (plus, optionally, an ignore and a crowd box)."""
    (root / "images").mkdir(parents=True)
    ds = Dataset(root=root)
    box_id = 1
    for i in range(n):
        img = np.full((H, W, 3), 90, np.uint8)
        img[int(RECT[1]) : int(RECT[3]), int(RECT[0]) : int(RECT[2])] = (0, 0, 255)  # BGR red
        cv2.imwrite(str(root / "images" / f"r{i}.png"), img)
        ds.images.append(ImageRecord(i + 1, f"r{i}.png", W, H))
        ds.annotations.append(Box(box_id, i + 1, [RECT[0], RECT[1], RECT[2] - RECT[0], RECT[3] - RECT[1]]))
        box_id += 1
        if extra_boxes:
            ds.annotations.append(Box(box_id, i + 1, [150, 10, 20, 40], ignore=1))
            ds.annotations.append(Box(box_id + 1, i + 1, [10, 60, 30, 50], iscrowd=1))
            box_id += 2
    ds.save()
    return ds


def _all(ds: tf.data.Dataset) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    return [(im.numpy(), t["boxes"].numpy(), t["labels"].numpy()) for im, t in ds]


def test_element_shapes_dtypes_and_ranges(tmp_path: Path) -> None:
    generate_synthetic(tmp_path / "d", 6, seed=1, size=(96, 64))
    for training in (False, True):
        ds = build_input_pipeline(
            tmp_path / "d", 4, (64, 96), training=training, seed=0, max_boxes=16, cache_dir=tmp_path / "cache"
        )
        batches = list(ds)
        assert [b[0].shape[0] for b in batches] == [4, 2]  # one pass, last partial batch kept
        images, targets = batches[0]
        assert images.dtype == tf.float32 and images.shape == (4, 64, 96, 3)
        assert targets["boxes"].dtype == tf.float32 and targets["boxes"].shape == (4, 16, 4)
        assert targets["labels"].dtype == tf.int32 and targets["labels"].shape == (4, 16)
        for im, boxes, labels in _all(ds):
            assert im.min() >= 0 and im.max() <= 255 and im.max() > 50
            assert set(np.unique(labels)) <= {-1, 0, 1}
            assert (boxes[labels == 0] == 0).all()
            valid = boxes[labels != 0]
            assert (valid[:, 0] >= 0).all() and (valid[:, 2] <= 96).all() and (valid[:, 3] <= 64).all()
            assert (valid[:, 2] > valid[:, 0]).all() and (valid[:, 3] > valid[:, 1]).all()


def test_eval_boxes_scale_with_resize_and_ignore_is_minus_one(tmp_path: Path) -> None:
    _rect_dataset(tmp_path / "d", n=2, extra_boxes=True)
    ds = build_input_pipeline(tmp_path / "d", 2, (60, 100), training=False, cache_dir=tmp_path / "c")
    ((images, boxes, labels),) = _all(ds)
    assert list(labels[0][:3]) == [1, -1, -1] and (labels[0][3:] == 0).all()
    assert np.allclose(boxes[0][0], np.array(RECT) / 2)
    assert np.allclose(boxes[0][1], [75, 5, 85, 25])
    data = (tmp_path / "d/images/r0.png").read_bytes()
    assert np.array_equal(images[0], decode_image_for_model(tf.constant(data), (60, 100)).numpy())
    assert images[0][30, 37, 0] > 200 and images[0][30, 37, 2] < 60  # RGB: the rectangle is red


@pytest.mark.parametrize("backend", ["opencv", "tf"])
def test_augmented_boxes_follow_the_pixels(tmp_path: Path, backend: str) -> None:
    _rect_dataset(tmp_path / "d", n=8)
    ds = build_input_pipeline(
        tmp_path / "d", 8, (H, W), training=True, seed=5, cache_dir=tmp_path / "c", warp_backend=backend
    )
    ((images, boxes, labels),) = _all(ds)
    moved = 0
    for im, bx, lb in zip(images, boxes, labels, strict=True):
        red = (im[:, :, 0] > 160) & (im[:, :, 1] < 110) & (im[:, :, 2] < 110)
        ys, xs = np.nonzero(red)
        px = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        x1, y1, x2, y2 = bx[0]
        assert lb[0] == 1
        inter = max(0, min(x2, px[2]) - max(x1, px[0])) * max(0, min(y2, px[3]) - max(y1, px[1]))
        union = (x2 - x1) * (y2 - y1) + (px[2] - px[0]) * (px[3] - px[1]) - inter
        assert inter / union > 0.7, (bx[0], px)
        moved += not np.allclose(bx[0], RECT, atol=1)
    assert moved >= 6  # augmentation really moved the boxes


@pytest.mark.parametrize("backend", ["opencv", "tf"])
def test_no_rotation_keeps_boxes_tight_and_their_shape(tmp_path: Path, backend: str) -> None:
    """max_angle=0: flips, zoom and shift only, so every box is the red rectangle scaled, never loosened."""
    _rect_dataset(tmp_path / "d", n=8)
    ds = build_input_pipeline(
        tmp_path / "d",
        8,
        (H, W),
        training=True,
        seed=5,
        cache_dir=tmp_path / "c",
        warp_backend=backend,
        max_angle=0.0,
    )
    ((images, boxes, _),) = _all(ds)
    aspect = (RECT[2] - RECT[0]) / (RECT[3] - RECT[1])
    for im, bx in zip(images, boxes, strict=True):
        x1, y1, x2, y2 = bx[0]
        assert (x2 - x1) / (y2 - y1) == pytest.approx(aspect, rel=1e-4)
        red = (im[:, :, 0] > 160) & (im[:, :, 1] < 110) & (im[:, :, 2] < 110)
        ys, xs = np.nonzero(red)
        assert abs(xs.min() - x1) <= 1.5 and abs(xs.max() + 1 - x2) <= 1.5
        assert abs(ys.min() - y1) <= 1.5 and abs(ys.max() + 1 - y2) <= 1.5


def test_backends_agree(tmp_path: Path) -> None:
    generate_synthetic(tmp_path / "d", 4, seed=3, size=(96, 64))
    runs = [
        _all(
            build_input_pipeline(
                tmp_path / "d", 4, (64, 96), training=True, seed=2, cache_dir=tmp_path / "c", warp_backend=b
            )
        )
        for b in ("opencv", "tf")
    ]
    (im_a, box_a, lab_a), (im_b, box_b, lab_b) = runs[0][0], runs[1][0]
    assert np.array_equal(lab_a, lab_b) and np.allclose(box_a, box_b, atol=1e-3)
    assert np.mean(np.abs(im_a - im_b)) < 3.0


def test_same_seed_same_batches_and_epochs_differ(tmp_path: Path) -> None:
    generate_synthetic(tmp_path / "d", 6, seed=4, size=(96, 64))

    def build(seed: int) -> tf.data.Dataset:
        return build_input_pipeline(
            tmp_path / "d", 3, (64, 96), training=True, seed=seed, cache_dir=tmp_path / "c"
        )

    a, b, c = build(7), build(7), build(8)
    first, again = _all(a), _all(b)
    for (ia, ba, la), (ib, bb, lb) in zip(first, again, strict=True):
        assert np.array_equal(ia, ib) and np.array_equal(ba, bb) and np.array_equal(la, lb)
    other = _all(c)
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(first, other, strict=True))
    second_epoch = _all(a)
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(first, second_epoch, strict=True))


def test_unreadable_images_are_skipped_and_counted(tmp_path: Path) -> None:
    ds = _rect_dataset(tmp_path / "d", n=4)
    (tmp_path / "d/images/r1.png").write_bytes(b"")  # zero bytes
    (tmp_path / "d/images/r2.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)  # corrupt
    before = skipped_images_counter()
    pipeline = build_input_pipeline(tmp_path / "d", 4, (60, 100), training=False, cache_dir=tmp_path / "c")
    ((images, _, _),) = _all(pipeline)
    assert images.shape[0] == 2
    assert skipped_images_counter() == before + 2
    cache = write_tfrecords(ds.root, tmp_path / "c")
    assert sorted(cache.skipped) == ["r1.png", "r2.png"] and cache.count == 2
    # building again reuses the shards and does not count the same dataset twice
    build_input_pipeline(tmp_path / "d", 4, (60, 100), training=True, cache_dir=tmp_path / "c")
    assert skipped_images_counter() == before + 2


def test_shards_are_cached_by_content(tmp_path: Path) -> None:
    ds = _rect_dataset(tmp_path / "d", n=2)
    first = write_tfrecords(ds.root, tmp_path / "c")
    stamp = first.shards[0].stat().st_mtime_ns
    assert write_tfrecords(ds.root, tmp_path / "c").path == first.path
    assert first.shards[0].stat().st_mtime_ns == stamp
    ds.annotations[0].bbox = [1.0, 1.0, 5.0, 5.0]
    ds.save()
    assert write_tfrecords(ds.root, tmp_path / "c").path != first.path


def test_more_boxes_than_max_keeps_pedestrians_first(tmp_path: Path) -> None:
    root = tmp_path / "d"
    (root / "images").mkdir(parents=True)
    cv2.imwrite(str(root / "images/a.png"), np.full((H, W, 3), 90, np.uint8))
    ds = Dataset(root=root, images=[ImageRecord(1, "a.png", W, H)])
    for i in range(6):  # three ignore regions listed before three pedestrians
        ds.annotations.append(Box(i + 1, 1, [10.0 + 20 * i, 10.0, 10.0, 30.0], ignore=int(i < 3)))
    ds.save()
    ((_, boxes, labels),) = _all(
        build_input_pipeline(root, 1, (H, W), training=False, max_boxes=4, cache_dir=tmp_path / "c")
    )
    assert list(labels[0]) == [1, 1, 1, -1]
    assert np.allclose(boxes[0][:3, 0], [70, 90, 110])


def test_one_compiled_shape_drops_or_wraps_the_last_batch(tmp_path: Path) -> None:
    _rect_dataset(tmp_path / "d", n=10)

    def build(**kwargs: bool) -> tf.data.Dataset:
        return build_input_pipeline(
            tmp_path / "d",
            4,
            (64, 96),
            seed=0,
            cache_dir=tmp_path / "c",
            **kwargs,  # type: ignore[arg-type]
        )

    dropped = list(build(training=True, drop_remainder=True))
    assert [b[0].shape[0] for b in dropped] == [4, 4]  # the partial batch of 2 is dropped
    wrapped = list(build(training=False, wrap_to_full_batches=True))
    assert [b[0].shape[0] for b in wrapped] == [4, 4, 4]  # 10 images: the first 2 fill the last batch
    plain = np.concatenate([b[0].numpy() for b in build(training=False)])
    padded = np.concatenate([b[0].numpy() for b in wrapped])
    np.testing.assert_array_equal(padded[:10], plain)  # every image, in order, then the wrap-around
    np.testing.assert_array_equal(padded[10:], plain[:2])


def test_cached_images_are_decoded_once_and_still_shuffled_each_epoch(tmp_path: Path) -> None:
    generate_synthetic(tmp_path / "d", 6, seed=4, size=(96, 64))
    cached = build_input_pipeline(
        tmp_path / "d", 3, (64, 96), training=True, seed=7, cache_dir=tmp_path / "c", cache_images=True
    )
    first, second = _all(cached), _all(cached)
    assert sum(len(b[0]) for b in first) == sum(len(b[0]) for b in second) == 6  # one pass = one epoch
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(first, second, strict=True))
    plain = _all(build_input_pipeline(tmp_path / "d", 6, (64, 96), training=False, cache_dir=tmp_path / "c"))
    # the same images as the uncached pipeline, augmented: the same multiset of box counts per epoch
    counts = sorted(int((labels != 0).sum()) for _, _, labels_batch in first for labels in labels_batch)
    assert counts == sorted(int((labels != 0).sum()) for labels in plain[0][2])
