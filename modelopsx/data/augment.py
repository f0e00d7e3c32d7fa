"""Box-aware image augmentation in numpy/OpenCV, and `augment_dataset` that materializes augmented copies.

Geometric transforms (horizontal flip, rotation, scale jitter with shift) are composed into one affine matrix
about the image centre and applied with a single `cv2.warpAffine`, so the output keeps the input size and
is resampled once. Boxes go through the same matrix:
- `tighten=False`: the four corners are transformed and re-fitted (exact for rectangular content, loose for
  a person under rotation);
- `tighten=True` (default): the ellipse inscribed in the box is transformed and its exact bounding box taken,
  the "rotated ellipse" rule, which hugs a rotated upright figure far better than corners. Both agree for
  flips, scaling and zero rotation.
Boxes are then clipped to the image. A box whose remaining area is below MIN_KEPT_FRACTION (30%) of its
transformed area becomes an ignore region (`ignore=1`: a sliver of a person at the border should neither be
demanded nor punished); a box with nothing left inside the image is dropped.

The same transforms run online as TensorFlow ops in `modelopsx.data.tfdata`.
"""

from __future__ import annotations

import math
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from modelopsx.data.format import IMAGES_DIR, Box, Dataset, ImageRecord, load_dataset
from modelopsx.errors import DatasetError

MIN_KEPT_FRACTION = 0.3
MIN_BOX_SIDE = 1.0  # px; thinner clipped boxes are dropped
JPEG_QUALITY = 95


@dataclass(frozen=True)
class AugmentParams:
    """One draw of augmentation parameters; the identity by default."""

    flip: bool = False
    angle: float = 0.0  # degrees, counter-clockwise as shown on screen
    scale: float = 1.0  # zoom about the image centre (>1 zooms in)
    shift: tuple[float, float] = (0.0, 0.0)  # translation after zoom, as a fraction of (width, height)
    brightness: float = 0.0  # added to every channel, 0..255 units
    contrast: float = 1.0  # multiplies the deviation from the image mean

    def to_json(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def sample_params(
    rng: np.random.Generator,
    max_angle: float = 8.0,
    scale_range: tuple[float, float] = (0.8, 1.25),
    max_shift: float = 0.08,
    max_brightness: float = 32.0,
    contrast_range: tuple[float, float] = (0.75, 1.3),
    flip_prob: float = 0.5,
) -> AugmentParams:
    return AugmentParams(
        flip=bool(rng.random() < flip_prob),
        angle=float(rng.uniform(-max_angle, max_angle)),
        scale=float(math.exp(rng.uniform(math.log(scale_range[0]), math.log(scale_range[1])))),
        shift=(float(rng.uniform(-max_shift, max_shift)), float(rng.uniform(-max_shift, max_shift))),
        brightness=float(rng.uniform(-max_brightness, max_brightness)),
        contrast=float(rng.uniform(*contrast_range)),
    )


def affine_matrix(
    params: AugmentParams, width: int, height: int, out_size: tuple[int, int] | None = None
) -> np.ndarray:
    """2x3 matrix from input to output image coordinates, in continuous pixel coordinates (pixel i spans
    [i, i+1)): stretch to `out_size` (width, height; default: the input size), then flip, rotate and zoom
    about the output centre, then shift."""
    out_w, out_h = out_size if out_size is not None else (width, height)
    stretch = np.diag([out_w / width, out_h / height, 1.0])
    cx, cy = out_w / 2.0, out_h / 2.0
    to_origin = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], np.float64)
    flip = np.diag([-1.0 if params.flip else 1.0, 1.0, 1.0])
    theta = math.radians(params.angle)
    c, s = math.cos(theta), math.sin(theta)
    # image y points down, so a counter-clockwise turn on screen is this matrix
    rotate = np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]], np.float64)
    zoom = np.diag([params.scale, params.scale, 1.0])
    back = np.array(
        [[1, 0, cx + params.shift[0] * out_w], [0, 1, cy + params.shift[1] * out_h], [0, 0, 1]], np.float64
    )
    return (back @ zoom @ rotate @ flip @ to_origin @ stretch)[:2]


def index_matrix(matrix: np.ndarray) -> np.ndarray:
    """Continuous-coordinate matrix -> pixel-index matrix (pixel centres at integers), as OpenCV expects."""
    a = matrix[:, :2]
    return np.concatenate([a, (matrix[:, 2] + a.sum(axis=1) * 0.5 - 0.5)[:, None]], axis=1)


def mean_colour(image: np.ndarray) -> tuple[float, float, float]:
    """Per-channel mean from every 4th pixel (16x less work, same value to a fraction of a level)."""
    import cv2

    b, g, r, _ = cv2.mean(np.ascontiguousarray(image[::4, ::4]))
    return b, g, r


def transform_boxes(boxes: np.ndarray, matrix: np.ndarray, tighten: bool = True) -> np.ndarray:
    """Map [N, 4] (x1, y1, x2, y2) boxes through a 2x3 affine matrix and re-fit axis-aligned boxes."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    lin, offset = matrix[:, :2], matrix[:, 2]
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    half = (boxes[:, 2:] - boxes[:, :2]) / 2.0
    new_centre = centre @ lin.T + offset
    if tighten:  # inscribed ellipse: half-extent along each axis is the norm of that row of A*diag(half)
        ext_x = np.sqrt((lin[0, 0] * half[:, 0]) ** 2 + (lin[0, 1] * half[:, 1]) ** 2)
        ext_y = np.sqrt((lin[1, 0] * half[:, 0]) ** 2 + (lin[1, 1] * half[:, 1]) ** 2)
    else:  # corners
        ext_x = np.abs(lin[0, 0]) * half[:, 0] + np.abs(lin[0, 1]) * half[:, 1]
        ext_y = np.abs(lin[1, 0]) * half[:, 0] + np.abs(lin[1, 1]) * half[:, 1]
    return np.stack(
        [
            new_centre[:, 0] - ext_x,
            new_centre[:, 1] - ext_y,
            new_centre[:, 0] + ext_x,
            new_centre[:, 1] + ext_y,
        ],
        axis=1,
    )


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Clip [N, 4] boxes to the image; returns (clipped boxes, fraction of each box's area still inside)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    clipped = boxes.copy()
    clipped[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
    clipped[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
    area = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    kept = np.maximum(clipped[:, 2] - clipped[:, 0], 0) * np.maximum(clipped[:, 3] - clipped[:, 1], 0)
    fraction = np.where(area > 0, kept / np.maximum(area, 1e-9), 0.0)
    return clipped, fraction


def warp_image(
    image: np.ndarray,
    matrix: np.ndarray,
    out_size: tuple[int, int] | None = None,
    fill: tuple[float, float, float] | None = None,
) -> np.ndarray:
    """Apply a continuous-coordinate affine matrix (bilinear); `out_size` is (width, height). Uncovered
    borders get the image's mean colour (reflect padding would create mirrored, unannotated people)."""
    import cv2

    h, w = image.shape[:2]
    size = out_size if out_size is not None else (w, h)
    return cv2.warpAffine(
        image,
        index_matrix(matrix),
        size,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=fill or mean_colour(image),
    )


def adjust_brightness_contrast(
    image: np.ndarray, brightness: float, contrast: float, mean: float | None = None
) -> np.ndarray:
    """Scale deviations from the mean intensity by `contrast`, then add `brightness` (uint8, saturating)."""
    import cv2

    level = float(np.mean(mean_colour(image))) if mean is None else mean
    return cv2.addWeighted(image, contrast, image, 0.0, (1.0 - contrast) * level + brightness)


def _geometric(
    image: np.ndarray, boxes: np.ndarray, params: AugmentParams, tighten: bool
) -> tuple[np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    matrix = affine_matrix(params, w, h)
    return warp_image(image, matrix), transform_boxes(boxes, matrix, tighten)


def hflip(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror left-right; boxes (x1, y1, x2, y2) become (W - x2, y1, W - x1, y2)."""
    w = image.shape[1]
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return image[:, ::-1].copy(), np.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1)


def rotate(
    image: np.ndarray, boxes: np.ndarray, angle: float, tighten: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Rotate about the centre by `angle` degrees (counter-clockwise); boxes re-fitted, not clipped."""
    return _geometric(image, boxes, AugmentParams(angle=angle), tighten)


def scale_jitter(
    image: np.ndarray, boxes: np.ndarray, scale: float, shift: tuple[float, float] = (0.0, 0.0)
) -> tuple[np.ndarray, np.ndarray]:
    """Zoom about the centre by `scale`, then shift by a fraction of the size; output keeps the input size."""
    return _geometric(image, boxes, AugmentParams(scale=scale, shift=shift), True)


@dataclass
class AugmentedBoxes:
    boxes: np.ndarray  # [M, 4] x1, y1, x2, y2, clipped to the image
    source_index: np.ndarray  # [M] index into the input boxes
    kept_fraction: np.ndarray  # [M] area inside the image / transformed area
    ignore: np.ndarray  # [M] bool: turned into an ignore region (or already one)


def augment_example(
    image: np.ndarray,
    boxes: np.ndarray,
    params: AugmentParams,
    ignore: np.ndarray | None = None,
    tighten: bool = True,
) -> tuple[np.ndarray, AugmentedBoxes]:
    """Apply one parameter draw to an image and its boxes (see the module docstring for the box rules)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    ignore_in = np.zeros(len(boxes), bool) if ignore is None else np.asarray(ignore, bool)
    h, w = image.shape[:2]
    out, moved = _geometric(image, boxes, params, tighten)
    if params.brightness != 0.0 or params.contrast != 1.0:
        out = adjust_brightness_contrast(out, params.brightness, params.contrast)
    clipped, fraction = clip_boxes(moved, w, h)
    sides = clipped[:, 2:] - clipped[:, :2]
    keep = (sides >= MIN_BOX_SIDE).all(axis=1)
    index = np.flatnonzero(keep)
    return out, AugmentedBoxes(
        clipped[index], index, fraction[index], ignore_in[index] | (fraction[index] < MIN_KEPT_FRACTION)
    )


# ---------------------------------------------------------------------------------------- materialized copies


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def augmented_name(file_name: str, copy: int) -> str:
    path = PurePosixPath(file_name)
    return str(path.with_name(f"{path.stem}__aug{copy}.jpg"))


def _augment_one(
    src: Dataset, out_images: Path, image: ImageRecord, boxes: list[Box], copy: int, seed: int
) -> tuple[AugmentParams, AugmentedBoxes]:
    import cv2

    pixels = cv2.imread(str(src.image_path(image)), cv2.IMREAD_COLOR)
    if pixels is None:
        raise DatasetError(
            f"{src.image_path(image)}: unreadable image",
            hint="run `modelopsx dataset validate --quarantine` on the source dataset first",
        )
    rng = np.random.default_rng([seed, copy, image.id])
    params = sample_params(rng)
    xyxy = np.array([b.xyxy for b in boxes], np.float64).reshape(-1, 4)
    ignore = np.array([bool(b.ignore or b.iscrowd) for b in boxes], bool)
    out, result = augment_example(pixels, xyxy, params, ignore)
    target = out_images / augmented_name(image.file_name, copy)
    target.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover
        raise DatasetError(f"could not encode {target}")
    target.write_bytes(buf.tobytes())
    return params, result


def augment_dataset(src: Path, out: Path, copies: int, seed: int, quiet: bool = True) -> Dataset:
    """Write `out`: every source image unchanged plus `copies` augmented copies of it (named
    `<stem>__aug<k>.jpg`, same group as their original so splits never separate them).

    Deterministic: copy k of image id i uses the random stream (seed, k, i). `info.source` records the source
    directory and its content hash (`dataset_version_hash`), linking the output to the exact input version.
    """
    from modelopsx.data.hashing import dataset_version_hash
    from modelopsx.data.synth import refuse_existing_dataset

    src, out = Path(src), Path(out)
    if copies < 0:
        raise DatasetError(f"--copies {copies} is negative", hint="pass 0 or more augmented copies per image")
    source = load_dataset(src)
    if src.resolve() == out.resolve():
        raise DatasetError("the output directory is the source dataset", hint="choose a new --out directory")
    refuse_existing_dataset(out)
    version = dataset_version_hash(src)
    out_images = out / IMAGES_DIR
    out_images.mkdir(parents=True, exist_ok=True)
    by_image = source.boxes_by_image()
    for image in source.images:
        _link_or_copy(source.image_path(image), out_images / image.file_name)

    tasks = [(image, k) for k in range(copies) for image in source.images]
    progress = None
    if not quiet and tasks:
        from tqdm import tqdm

        progress = tqdm(total=len(tasks), desc="augment", unit="img")
    results: list[tuple[AugmentParams, AugmentedBoxes]] = []
    # OpenCV releases the GIL while decoding, warping and encoding, so threads use every core
    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        futures = [
            pool.submit(_augment_one, source, out_images, image, by_image[image.id], k, seed)
            for image, k in tasks
        ]
        for future in futures:
            results.append(future.result())
            if progress is not None:
                progress.update(1)
    if progress is not None:
        progress.close()

    dataset = Dataset(
        root=out,
        info={
            "description": f"{copies} box-aware augmented copies per image of {src.name}",
            "source": {"path": str(src.resolve()), "version": version},
            "augment": {
                "copies": copies,
                "seed": seed,
                "tighten": True,
                "min_kept_fraction": MIN_KEPT_FRACTION,
            },
            "source_info": source.info,
        },
    )
    next_image, next_box = 1, 1
    for image in source.images:
        dataset.images.append(
            ImageRecord(
                next_image, image.file_name, image.width, image.height, image.group, dict(image.extra)
            )
        )
        for box in by_image[image.id]:
            dataset.annotations.append(
                Box(
                    next_box,
                    next_image,
                    list(box.bbox),
                    box.iscrowd,
                    box.ignore,
                    box.visibility,
                    box.height,
                    box.truncation,
                    box.category_id,
                    dict(box.extra),
                )
            )
            next_box += 1
        next_image += 1
    for (image, k), (params, result) in zip(tasks, results, strict=True):
        dataset.images.append(
            ImageRecord(
                next_image,
                augmented_name(image.file_name, k),
                image.width,
                image.height,
                image.group,
                {"augmented_from": image.file_name, "augment": params.to_json()},
            )
        )
        originals = by_image[image.id]
        for row, src_index in enumerate(result.source_index):
            box = originals[int(src_index)]
            x1, y1, x2, y2 = (float(v) for v in result.boxes[row])
            dataset.annotations.append(
                Box(
                    next_box,
                    next_image,
                    [x1, y1, x2 - x1, y2 - y1],
                    box.iscrowd,
                    int(bool(result.ignore[row])),
                    visibility=float(box.visibility) * float(min(1.0, result.kept_fraction[row])),
                    height=float(box.height) * params.scale,
                    category_id=box.category_id,
                )
            )
            next_box += 1
        next_image += 1
    dataset.save()
    return dataset
