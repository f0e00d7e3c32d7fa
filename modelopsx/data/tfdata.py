"""The training/evaluation input pipeline (tf.data) over a canonical dataset directory.

Storage: TFRecord shards, written once per dataset *content* and reused. Why shards rather than reading
image files directly:
- one sequential file per ~256 images instead of thousands of small opens; the same pipeline reads local
  disks, FUSE-mounted buckets and `gs://` paths efficiently (parallel interleave over shards);
- annotations travel inside each record, so a training step never touches annotations.json;
- the one-time conversion is where images are checked with TensorFlow's own decoder: an image that cannot be
  decoded is left out and counted (`skipped_images_counter()`), so training never crashes on a corrupt file.
Shards live in a content-addressed cache, `<cache_dir>/<dataset_version_hash[:24]>-v<FORMAT>/`
(`cache_dir` defaults to $MODELOPSX_CACHE_DIR/tfrecords or ~/.cache/modelopsx/tfrecords), never inside the
dataset folder: dataset folders are versioned, hashed and pushed with DVC, and as KFP inputs may be read-only.
A changed dataset gets a new hash, hence new shards; the write is atomic (temp dir + rename).

Memory stays bounded by construction: records stream from disk, the shuffle buffer holds at most
SHUFFLE_BUFFER encoded images, nothing is `.cache()`d in RAM, and prefetch holds a few batches.

Online augmentation (training=True) mirrors `modelopsx.data.augment`: flip, small rotation, scale jitter
with shift, brightness/contrast, with boxes mapped through the same affine matrix (inscribed-ellipse refit),
clipped, and turned into ignore regions (label -1) when under 30% of the box is left inside the image.
Parameters come from TensorFlow stateless random ops seeded per element from `tf.data.Dataset.random(seed)`,
so a given seed reproduces every epoch exactly while epochs differ from each other.

The geometric warp (flip + rotation + zoom + shift + resize to the model input, one resampling) runs by
default in OpenCV's `warpAffine` through `tf.numpy_function` (`warp_backend="opencv"`): on the 2-core
reference machine (384x256 JPEGs, tests/benchmarks/bench_data.py) a pipeline warping with TensorFlow's
ImageProjectiveTransformV3 kernel spent ~10 CPU ms per image against 0.5 ms for the JPEG decode, while
warpAffine costs ~0.4 ms and releases the GIL, so the OpenCV pipeline runs ~9x faster.
`warp_backend="tf"` keeps the whole pipeline in graph ops for environments that cannot call Python
(tf.data service); both backends produce the same geometry and boxes.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from modelopsx import settings
from modelopsx.data.augment import (
    MIN_KEPT_FRACTION,
    AugmentParams,
    adjust_brightness_contrast,
    affine_matrix,
    mean_colour,
    warp_image,
)
from modelopsx.data.format import load_dataset

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
IMAGES_PER_SHARD = 256
SHUFFLE_BUFFER = 1024
MANIFEST = "manifest.json"
PEDESTRIAN, IGNORE, PADDING = 1, -1, 0

# augmentation ranges, shared in spirit with augment.sample_params
MAX_ANGLE_DEG = 8.0
SCALE_RANGE = (0.8, 1.25)
MAX_SHIFT = 0.08
MAX_BRIGHTNESS = 32.0
CONTRAST_RANGE = (0.75, 1.3)

_skipped_lock = threading.Lock()
_skipped_by_cache: dict[str, int] = {}


def skipped_images_counter() -> int:
    """How many unreadable images the pipelines built in this process have left out (each dataset once)."""
    with _skipped_lock:
        return sum(_skipped_by_cache.values())


@dataclass
class ShardCache:
    """The TFRecord shards of one dataset version."""

    path: Path
    shards: list[Path]
    count: int  # records written (readable images)
    skipped: list[str]  # file names of images left out as unreadable


def default_cache_dir() -> Path:
    return settings.cache_dir() / "tfrecords"


# ------------------------------------------------------------------------------------------- shard writing


def _bytes_feature(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _check_image(path: Path) -> bytes | None:
    """The file's bytes if TensorFlow can decode them as a 3-channel image, else None."""
    try:
        data = path.read_bytes()
        if not data:
            return None
        tf.io.decode_image(data, channels=3, expand_animations=False)
        return data
    except (OSError, tf.errors.OpError, ValueError):
        return None


def write_tfrecords(dataset_dir: Path, cache_dir: Path | None = None) -> ShardCache:
    """Build (or reuse) the shards of `dataset_dir`; returns where they are and what was skipped."""
    from modelopsx.data.hashing import dataset_version_hash

    dataset_dir = Path(dataset_dir)
    dataset = load_dataset(dataset_dir)
    key = f"{dataset_version_hash(dataset_dir)[:24]}-v{FORMAT_VERSION}"
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = root / key
    if (final / MANIFEST).is_file():
        return _read_manifest(final)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        if cache_dir is not None:
            raise
        # a container with a read-only home: the shards are a cache, the temp dir will do
        root = Path(tempfile.gettempdir()) / "modelopsx-tfrecords"
        root.mkdir(parents=True, exist_ok=True)
        final = root / key
        if (final / MANIFEST).is_file():
            return _read_manifest(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
    try:
        boxes_by_image = dataset.boxes_by_image()
        n_shards = max(1, math.ceil(len(dataset.images) / IMAGES_PER_SHARD))
        names = [f"shard-{i:05d}-of-{n_shards:05d}.tfrecord" for i in range(n_shards)]
        per_shard = math.ceil(len(dataset.images) / n_shards) if dataset.images else 1
        skipped: list[str] = []
        count = 0
        with ThreadPoolExecutor(max_workers=4) as pool:  # TF's decoder releases the GIL
            for shard_index, name in enumerate(names):
                images = dataset.images[shard_index * per_shard : (shard_index + 1) * per_shard]
                contents = pool.map(lambda img: _check_image(dataset.image_path(img)), images)
                with tf.io.TFRecordWriter(str(tmp / name)) as writer:
                    for image, data in zip(images, contents, strict=True):
                        if data is None:
                            skipped.append(image.file_name)
                            continue
                        boxes: list[float] = []
                        labels: list[int] = []
                        for box in boxes_by_image.get(image.id, []):
                            boxes.extend(box.xyxy)
                            labels.append(IGNORE if box.ignore or box.iscrowd else PEDESTRIAN)
                        example = tf.train.Example(
                            features=tf.train.Features(
                                feature={
                                    "image": _bytes_feature(data),
                                    "file_name": _bytes_feature(image.file_name.encode()),
                                    "id": tf.train.Feature(int64_list=tf.train.Int64List(value=[image.id])),
                                    "boxes": tf.train.Feature(float_list=tf.train.FloatList(value=boxes)),
                                    "labels": tf.train.Feature(int64_list=tf.train.Int64List(value=labels)),
                                }
                            )
                        )
                        writer.write(example.SerializeToString())
                        count += 1
        manifest = {
            "format": FORMAT_VERSION,
            "dataset": str(dataset_dir.resolve()),
            "shards": names,
            "count": count,
            "skipped": skipped,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        try:
            os.replace(tmp, final)
        except OSError:  # another process finished the same shards first: theirs are identical
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for name in skipped:
        log.warning("skipping unreadable image %s", dataset_dir / "images" / name)
    return _read_manifest(final)


def _read_manifest(path: Path) -> ShardCache:
    manifest = json.loads((path / MANIFEST).read_text())
    return ShardCache(
        path, [path / name for name in manifest["shards"]], int(manifest["count"]), list(manifest["skipped"])
    )


# ------------------------------------------------------------------------------------------ decode & warp


def decode_image_for_model(image_bytes: tf.Tensor, image_size: tuple[int, int]) -> tf.Tensor:
    """Encoded JPEG/PNG -> float32 [H, W, 3] RGB 0..255, stretched to `image_size` (height, width).

    Shared by training (evaluation path) and the model's serving signature, so both see identical pixels.
    """
    image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
    return _resize(image, (int(image_size[0]), int(image_size[1])))


def _resize(image: tf.Tensor, out_hw: tuple[int, int]) -> tf.Tensor:
    """Bilinear stretch to (height, width) as float32; a no-op cast when the size already matches."""
    shape = tf.shape(image)
    same = tf.logical_and(tf.equal(shape[0], out_hw[0]), tf.equal(shape[1], out_hw[1]))
    resized = tf.cond(
        same,
        lambda: tf.cast(image, tf.float32),
        lambda: tf.image.resize(image, list(out_hw), method="bilinear"),
    )
    return tf.ensure_shape(resized, [out_hw[0], out_hw[1], 3])


def _sample_params(seed: tf.Tensor, max_angle: float = MAX_ANGLE_DEG) -> tf.Tensor:
    """[flip, angle (rad), scale, shift_x, shift_y, brightness, contrast] from a stateless seed."""
    u = tf.random.stateless_uniform([7], seed=seed, dtype=tf.float32)
    flip = tf.cast(u[0] < 0.5, tf.float32)
    angle = (u[1] * 2.0 - 1.0) * (max_angle * math.pi / 180.0)
    lo, hi = math.log(SCALE_RANGE[0]), math.log(SCALE_RANGE[1])
    scale = tf.exp(lo + u[2] * (hi - lo))
    shift = (u[3:5] * 2.0 - 1.0) * MAX_SHIFT
    brightness = (u[5] * 2.0 - 1.0) * MAX_BRIGHTNESS
    contrast = CONTRAST_RANGE[0] + u[6] * (CONTRAST_RANGE[1] - CONTRAST_RANGE[0])
    return tf.stack([flip, angle, scale, shift[0], shift[1], brightness, contrast])


def _affine(params: tf.Tensor | None, in_hw: tf.Tensor, out_hw: tuple[int, int]) -> tf.Tensor:
    """2x3 forward matrix in continuous pixel coordinates (pixel i spans [i, i+1)): original image -> model
    input. Resize first, then flip/rotate/zoom about the output centre and shift, as augment.affine_matrix."""
    in_h, in_w = tf.cast(in_hw[0], tf.float32), tf.cast(in_hw[1], tf.float32)
    out_h, out_w = float(out_hw[0]), float(out_hw[1])
    sx, sy = out_w / in_w, out_h / in_h
    if params is None:
        zero = tf.zeros([], tf.float32)
        return tf.reshape(tf.stack([sx, zero, zero, zero, sy, zero]), [2, 3])
    flip = 1.0 - 2.0 * params[0]
    c, s, z = tf.cos(params[1]), tf.sin(params[1]), params[2]
    # A_aug = zoom * rotate * flip ; A = A_aug * diag(sx, sy)
    a00, a01 = z * c * flip, z * s
    a10, a11 = -z * s * flip, z * c
    cx, cy = out_w / 2.0, out_h / 2.0
    tx = cx + params[3] * out_w - (a00 * cx + a01 * cy)
    ty = cy + params[4] * out_h - (a10 * cx + a11 * cy)
    return tf.reshape(tf.stack([a00 * sx, a01 * sy, tx, a10 * sx, a11 * sy, ty]), [2, 3])


def _index_matrix(matrix: tf.Tensor) -> tf.Tensor:
    """Continuous-coordinate matrix -> pixel-index matrix (centres at integers), as OpenCV expects."""
    a = matrix[:, :2]
    t = matrix[:, 2] + tf.reduce_sum(a, axis=1) * 0.5 - 0.5
    return tf.concat([a, t[:, None]], axis=1)


def params_from_uniform(u: np.ndarray, max_angle: float = MAX_ANGLE_DEG) -> AugmentParams:
    """The same draw as `_sample_params`, in Python, for the OpenCV backend."""
    lo, hi = math.log(SCALE_RANGE[0]), math.log(SCALE_RANGE[1])
    return AugmentParams(
        flip=bool(u[0] < 0.5),
        angle=float((u[1] * 2.0 - 1.0) * max_angle),
        scale=float(math.exp(lo + float(u[2]) * (hi - lo))),
        shift=(float((u[3] * 2.0 - 1.0) * MAX_SHIFT), float((u[4] * 2.0 - 1.0) * MAX_SHIFT)),
        brightness=float((u[5] * 2.0 - 1.0) * MAX_BRIGHTNESS),
        contrast=float(CONTRAST_RANGE[0] + u[6] * (CONTRAST_RANGE[1] - CONTRAST_RANGE[0])),
    )


def _cv_augment(
    image: np.ndarray, u: np.ndarray, out_hw: np.ndarray, max_angle: np.ndarray | float = MAX_ANGLE_DEG
) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV backend: one warpAffine (geometry + resize) and one addWeighted (photometric); returns the
    augmented uint8 image and the continuous-coordinate matrix for the boxes."""
    params = params_from_uniform(u, float(max_angle))
    height, width = int(out_hw[0]), int(out_hw[1])
    matrix = affine_matrix(params, image.shape[1], image.shape[0], (width, height))
    fill = mean_colour(image)
    out = warp_image(image, matrix, (width, height), fill)
    out = adjust_brightness_contrast(out, params.brightness, params.contrast, mean=sum(fill) / 3.0)
    return out, matrix.astype(np.float32)


def _tf_augment(image: tf.Tensor, params: tf.Tensor, matrix: tf.Tensor, out_hw: tuple[int, int]) -> tf.Tensor:
    """Pure-graph backend: ImageProjectiveTransformV3 + photometric, same rules as `_cv_augment`."""
    idx = _index_matrix(matrix)
    full = tf.concat([idx, tf.constant([[0.0, 0.0, 1.0]])], axis=0)
    inverse = tf.linalg.inv(full)  # output pixel -> input pixel, as the projective kernel wants
    transform = tf.concat([tf.reshape(inverse[:2], [6]), tf.zeros([2])], axis=0)[None]
    pixels = tf.cast(image, tf.float32)
    fill = tf.reduce_mean(pixels[::4, ::4], axis=[0, 1])
    # the kernel has one fill value: warp a coverage channel along and paint uncovered pixels after
    stacked = tf.concat([pixels, tf.ones_like(pixels[..., :1])], axis=-1)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=stacked[None],
        transforms=transform,
        output_shape=list(out_hw),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )[0]
    cover = out[..., 3:]
    warped = tf.round(out[..., :3] + (1.0 - cover) * fill)
    level = tf.reduce_mean(fill)
    adjusted = warped * params[6] + ((1.0 - params[6]) * level + params[5])
    return tf.cast(tf.clip_by_value(tf.round(adjusted), 0.0, 255.0), tf.uint8)


# ------------------------------------------------------------------------------------------------ boxes


def transform_boxes_batch(
    boxes: tf.Tensor, labels: tf.Tensor, matrices: tf.Tensor, image_size: tuple[int, int]
) -> tuple[tf.Tensor, tf.Tensor]:
    """Map padded boxes [B, M, 4] through per-image matrices [B, 2, 3], clip, relabel, compact.

    Same rules as augment.augment_example: inscribed-ellipse refit, under 30% left inside -> ignore (-1),
    nothing left -> padding (0). Valid pedestrians come first, then ignore regions, then padding.
    """
    height, width = float(image_size[0]), float(image_size[1])
    a = matrices[:, :, :2]
    t = matrices[:, :, 2]
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2.0
    half = (boxes[..., 2:] - boxes[..., :2]) / 2.0
    new_centre = tf.einsum("bij,bmj->bmi", a, centre) + t[:, None, :]
    ext = tf.sqrt(tf.einsum("bij,bmj->bmi", tf.square(a), tf.square(half)))
    moved = tf.concat([new_centre - ext, new_centre + ext], axis=-1)
    limits = tf.constant([width, height, width, height])
    clipped = tf.clip_by_value(moved, 0.0, limits)
    area = tf.reduce_prod(tf.maximum(moved[..., 2:] - moved[..., :2], 0.0), axis=-1)
    sides = clipped[..., 2:] - clipped[..., :2]
    kept = tf.reduce_prod(tf.maximum(sides, 0.0), axis=-1) / tf.maximum(area, 1e-6)
    labels = tf.where((labels == PEDESTRIAN) & (kept < MIN_KEPT_FRACTION), IGNORE, labels)
    labels = tf.where(tf.reduce_any(sides < 1.0, axis=-1), PADDING, labels)
    clipped = clipped * tf.cast(labels != PADDING, tf.float32)[..., None]
    order = tf.argsort(
        tf.where(labels == PEDESTRIAN, 0, tf.where(labels == IGNORE, 1, 2)), axis=1, stable=True
    )
    return tf.gather(clipped, order, batch_dims=1), tf.gather(labels, order, batch_dims=1)


# --------------------------------------------------------------------------------------------- pipeline


_FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "boxes": tf.io.VarLenFeature(tf.float32),
    "labels": tf.io.VarLenFeature(tf.int64),
}


def _dense_boxes(
    boxes: tf.SparseTensor, labels: tf.SparseTensor, max_boxes: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """Batched variable-length box lists -> [B, max_boxes, 4] and [B, max_boxes], padding label 0.

    Done per batch rather than per image: a handful of vectorized ops instead of the same per element.
    Pedestrians are kept ahead of ignore regions if an image has more than max_boxes.
    """
    batch = tf.cast(labels.dense_shape[0], tf.int32)
    dense_boxes = tf.reshape(tf.sparse.to_dense(boxes), [batch, -1, 4])
    dense_labels = tf.cast(tf.sparse.to_dense(labels), tf.int32)
    priority = tf.where(dense_labels == PEDESTRIAN, 0, tf.where(dense_labels == IGNORE, 1, 2))
    order = tf.argsort(priority, axis=1, stable=True)[:, :max_boxes]
    dense_boxes = tf.gather(dense_boxes, order, batch_dims=1)
    dense_labels = tf.gather(dense_labels, order, batch_dims=1)
    missing = max_boxes - tf.shape(dense_labels)[1]
    dense_boxes = tf.pad(dense_boxes, [[0, 0], [0, missing], [0, 0]])
    dense_labels = tf.pad(dense_labels, [[0, 0], [0, missing]], constant_values=PADDING)
    dense_boxes = tf.ensure_shape(dense_boxes, [None, max_boxes, 4])
    return dense_boxes, tf.ensure_shape(dense_labels, [None, max_boxes])


def build_input_pipeline(
    dataset_dir: Path,
    batch_size: int,
    image_size: tuple[int, int],
    training: bool,
    seed: int | None = None,
    max_boxes: int = 64,
    cache_dir: Path | None = None,
    warp_backend: str = "opencv",
    augment: bool | None = None,
    max_angle: float = MAX_ANGLE_DEG,
    drop_remainder: bool = False,
    cache_images: bool = False,
    wrap_to_full_batches: bool = False,
) -> tf.data.Dataset:
    """Batches of (images float32 [B, H, W, 3] RGB 0..255, {"boxes": [B, max_boxes, 4] x1y1x2y2 input pixels,
    "labels": int32 [B, max_boxes] 1 pedestrian / -1 ignore or crowd / 0 padding}).

    training=True: shuffled (bounded buffer) and augmented online; no repeat (one pass = one epoch).
    training=False: dataset order, no augmentation, last partial batch kept. `augment` overrides whether
    training applies augmentation; `max_angle` bounds the random rotation in degrees (0: none).
    Unreadable images are skipped and counted (`skipped_images_counter()`).

    For one compiled shape on accelerators: `drop_remainder` drops a training epoch's last partial batch;
    `wrap_to_full_batches` (evaluation) repeats the first images to fill the last batch instead, so every
    image is still seen. `cache_images` keeps the decoded images in RAM after the first pass (shuffled and
    augmented anew each epoch from there): decoding is then paid once per run, not once per epoch.
    """
    if warp_backend not in ("opencv", "tf"):
        raise ValueError(f"warp_backend must be 'opencv' or 'tf', not {warp_backend!r}")
    height, width = int(image_size[0]), int(image_size[1])
    out_hw = (height, width)
    cache = write_tfrecords(Path(dataset_dir), cache_dir)
    with _skipped_lock:
        _skipped_by_cache[str(cache.path)] = len(cache.skipped)
    do_augment = training if augment is None else augment
    if do_augment and warp_backend == "opencv":
        import cv2

        # tf.data already runs one warp per core; OpenCV's own worker threads would only oversubscribe them
        cv2.setNumThreads(1)
    autotune = tf.data.AUTOTUNE

    files = tf.data.Dataset.from_tensor_slices([str(p) for p in cache.shards])
    if training:
        files = files.shuffle(len(cache.shards), seed=seed, reshuffle_each_iteration=True)
    if training:
        records = files.interleave(
            tf.data.TFRecordDataset,
            cycle_length=min(len(cache.shards), 8),
            num_parallel_calls=autotune,
            deterministic=True,
        )
    else:
        records = tf.data.TFRecordDataset(files, num_parallel_reads=None)  # shards in order
    if training and not cache_images:
        records = records.shuffle(
            min(SHUFFLE_BUFFER, max(1, cache.count)), seed=seed, reshuffle_each_iteration=True
        )
    records = records.apply(tf.data.experimental.assert_cardinality(cache.count))

    def decode(record: tf.Tensor) -> tuple[Any, ...]:
        ex = tf.io.parse_single_example(record, _FEATURES)
        image = tf.io.decode_image(ex["image"], channels=3, expand_animations=False)
        return image, ex["boxes"], ex["labels"]

    decoded = records.map(decode, num_parallel_calls=autotune, deterministic=True)
    if cache_images:
        decoded = decoded.cache()
        if training:  # the whole split is in RAM: shuffle all of it, anew each epoch
            decoded = decoded.shuffle(max(1, cache.count), seed=seed, reshuffle_each_iteration=True)

    def prepare(decoded_example: tuple[Any, ...], rnd: tf.Tensor) -> tuple[Any, ...]:
        image, boxes, labels = decoded_example
        ex = {"boxes": boxes, "labels": labels}
        if not do_augment:  # exactly decode_image_for_model, the serving path
            matrix = _affine(None, tf.shape(image)[:2], out_hw)
            return _resize(image, out_hw), ex["boxes"], ex["labels"], matrix
        seed_pair = tf.stack([rnd, rnd // 7919 + 1])
        if warp_backend == "tf":
            params = _sample_params(seed_pair, max_angle)
            matrix = _affine(params, tf.shape(image)[:2], out_hw)
            pixels = _tf_augment(image, params, matrix, out_hw)
        else:
            u = tf.random.stateless_uniform([7], seed=seed_pair, dtype=tf.float32)
            pixels, matrix = tf.numpy_function(
                _cv_augment,
                [image, u, tf.constant(out_hw), tf.constant(max_angle, tf.float32)],
                [tf.uint8, tf.float32],
                stateful=False,
            )
            matrix = tf.ensure_shape(matrix, [2, 3])
        # images stay uint8 until batched: a quarter of the bytes to copy; one cast per batch
        return tf.ensure_shape(pixels, [height, width, 3]), ex["boxes"], ex["labels"], matrix

    randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    elements = tf.data.Dataset.zip(decoded, randoms).map(
        prepare, num_parallel_calls=autotune, deterministic=True
    )
    if wrap_to_full_batches:
        full = -(-cache.count // batch_size)
        batches = elements.repeat().batch(batch_size, drop_remainder=True).take(full)
    else:
        batches = elements.batch(batch_size, drop_remainder=drop_remainder)

    def finish(
        images: tf.Tensor, boxes: tf.SparseTensor, labels: tf.SparseTensor, matrices: tf.Tensor
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        dense_boxes, dense_labels = _dense_boxes(boxes, labels, max_boxes)
        dense_boxes, dense_labels = transform_boxes_batch(dense_boxes, dense_labels, matrices, out_hw)
        return tf.cast(images, tf.float32), {"boxes": dense_boxes, "labels": dense_labels}

    return batches.map(finish, num_parallel_calls=autotune, deterministic=True).prefetch(autotune)


def pipeline_info(dataset_dir: Path, cache_dir: Path | None = None) -> dict[str, Any]:
    """Where the shards of a dataset are and what was skipped (for logs and the CLI)."""
    cache = write_tfrecords(Path(dataset_dir), cache_dir)
    return {
        "cache": str(cache.path),
        "shards": len(cache.shards),
        "images": cache.count,
        "skipped": cache.skipped,
    }
