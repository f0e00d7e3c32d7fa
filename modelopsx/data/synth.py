"""Synthetic pedestrian dataset: procedural street scenes with exact boxes, visibility and groups.

Images come in sequences of SEQUENCE_LENGTH frames sharing a background and a cast (one `group` per
sequence, so splits by group never leak a scene). Every image is generated from its own random streams,
seeded by (seed, group) for the sequence and (seed, index) for the frame, so images can be rendered in any
order, in parallel, and always come out byte-identical.

Annotations are measured from pixels: the compositor paints an id map alongside the image, so
- `bbox` is the tight box of the person's visible pixels,
- `height` is the height of the full (unoccluded, amodal) figure,
- `visibility` is visible pixels / full-figure pixels (occlusion by cars, poles, other people, and the image
  border), and `truncation` the fraction of the figure outside the image;
- fragments too small to be fair targets (visibility < MIN_VISIBILITY or visible box under MIN_BOX_HEIGHT px)
  are kept as ignore regions (`ignore=1`), so they count neither as misses nor as false positives.
Every tenth image (index % 10 == 7) shows its scene with nobody in it.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from modelopsx.data.format import IMAGES_DIR, Box, Dataset, ImageRecord
from modelopsx.data.synth_scene import Cast, frame_sprites, make_cast
from modelopsx.data.synth_sprites import Sprite
from modelopsx.errors import DatasetError

GENERATOR_VERSION = 2
SEQUENCE_LENGTH = 4
EMPTY_EVERY = 10
EMPTY_PHASE = 7
MIN_VISIBILITY = 0.2
MIN_BOX_HEIGHT = 10
PARALLEL_THRESHOLD = 64  # below this, a process pool costs more than it saves
_GROUP_STREAM = 1_000_003  # keeps the sequence stream apart from the frame streams


@dataclass
class Frame:
    """A rendered image with its per-person annotations (dicts) and the id map used to measure them."""

    image: np.ndarray  # BGR uint8
    people: list[dict[str, Any]]
    id_map: np.ndarray  # uint16: 0 background, i+1 = sprite i in `sprites` order


@lru_cache(maxsize=4)
def _cast(seed: int, group: int, width: int, height: int) -> Cast:
    return make_cast(np.random.default_rng([seed, _GROUP_STREAM, group]), width, height)


def _composite(background: np.ndarray, sprites: list[Sprite]) -> tuple[np.ndarray, np.ndarray]:
    img = background.copy()
    id_map = np.zeros(img.shape[:2], np.uint16)
    h, w = img.shape[:2]
    for index, sprite in enumerate(sprites, start=1):
        sh, sw = sprite.rgba.shape[:2]
        x1, y1 = max(0, sprite.x0), max(0, sprite.y0)
        x2, y2 = min(w, sprite.x0 + sw), min(h, sprite.y0 + sh)
        if x1 >= x2 or y1 >= y2:
            continue
        local = sprite.rgba[y1 - sprite.y0 : y2 - sprite.y0, x1 - sprite.x0 : x2 - sprite.x0]
        mask = local[:, :, 3] > 0
        img[y1:y2, x1:x2][mask] = local[:, :, :3][mask]
        id_map[y1:y2, x1:x2][mask] = index
    return img, id_map


def _shadows(img: np.ndarray, sprites: list[Sprite]) -> None:
    """Darken an ellipse of ground under each person and car (drawn before the objects themselves)."""
    layer = np.zeros(img.shape[:2], np.uint8)
    for s in sprites:
        if s.kind == "distractor":
            continue
        sh, sw = s.rgba.shape[:2]
        cx, cy = s.x0 + sw // 2, int(s.depth)
        cv2.ellipse(layer, (cx, cy), (max(2, int(sw * 0.45)), max(1, int(sh * 0.04))), 0, 0, 360, 1, -1)
    img[layer > 0] = (img[layer > 0] * 0.65).astype(np.uint8)


def _measure(sprites: list[Sprite], id_map: np.ndarray) -> list[dict[str, Any]]:
    h, w = id_map.shape
    people: list[dict[str, Any]] = []
    for index, sprite in enumerate(sprites, start=1):
        if sprite.kind != "person":
            continue
        alpha = sprite.rgba[:, :, 3] > 0
        full = int(alpha.sum())
        rows = np.flatnonzero(alpha.any(axis=1))
        if full == 0 or rows.size == 0:
            continue
        full_height = float(rows[-1] - rows[0] + 1)
        sh, sw = alpha.shape
        x1, y1 = max(0, sprite.x0), max(0, sprite.y0)
        x2, y2 = min(w, sprite.x0 + sw), min(h, sprite.y0 + sh)
        if x1 >= x2 or y1 >= y2:
            continue
        inside = int(alpha[y1 - sprite.y0 : y2 - sprite.y0, x1 - sprite.x0 : x2 - sprite.x0].sum())
        visible = id_map[y1:y2, x1:x2] == index
        n_visible = int(visible.sum())
        if n_visible == 0:
            continue
        vy = np.flatnonzero(visible.any(axis=1))
        vx = np.flatnonzero(visible.any(axis=0))
        bx1, by1 = x1 + int(vx[0]), y1 + int(vy[0])
        bx2, by2 = x1 + int(vx[-1]) + 1, y1 + int(vy[-1]) + 1
        visibility = n_visible / full
        ignore = int(visibility < MIN_VISIBILITY or (by2 - by1) < MIN_BOX_HEIGHT)
        people.append(
            {
                "bbox": [float(bx1), float(by1), float(bx2 - bx1), float(by2 - by1)],
                "height": full_height,
                "visibility": round(visibility, 4),
                "truncation": round(1.0 - inside / full, 4),
                "ignore": ignore,
                "sprite": index,
            }
        )
    return people


def _light(img: np.ndarray, cast: Cast, rng: np.random.Generator) -> np.ndarray:
    """Global exposure, a directional light gradient, colour tint, slight blur and sensor noise."""
    h, w = img.shape[:2]
    gain = cast.light_gain * rng.uniform(0.92, 1.08)
    ys = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    xs = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    field = (gain * (1 + cast.light_tilt[0] * xs + cast.light_tilt[1] * ys))[:, :, None]
    out = img.astype(np.float32)
    out *= field * np.array(cast.tint, np.float32)
    out = cv2.GaussianBlur(out, (3, 3), float(rng.uniform(0.3, 0.8)))
    noise = np.empty_like(out)
    cv2.setRNGSeed(int(rng.integers(2**31)))  # OpenCV's RNG is per thread: seeded right before use
    cv2.randn(noise, 0.0, float(rng.uniform(1.0, 5.0)))
    out += noise
    return np.clip(out, 0, 255, out=out).astype(np.uint8)


def is_person_free(index: int) -> bool:
    return index % EMPTY_EVERY == EMPTY_PHASE


def render_frame(seed: int, index: int, size: tuple[int, int] = (384, 256)) -> Frame:
    """Render image `index` of the synthetic dataset with `seed`; `size` is (width, height)."""
    width, height = size
    group, t = divmod(index, SEQUENCE_LENGTH)
    cast = _cast(seed, group, width, height)
    rng = np.random.default_rng([seed, index])
    sprites = frame_sprites(cast, t, with_people=not is_person_free(index))
    background = cast.background.copy()
    _shadows(background, sprites)
    img, id_map = _composite(background, sprites)
    people = _measure(sprites, id_map)
    return Frame(_light(img, cast, rng), people, id_map)


def _jpeg(frame: Frame, seed: int, index: int) -> bytes:
    quality = int(np.random.default_rng([seed, index, 7]).integers(80, 96))
    ok, buf = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV always encodes a uint8 BGR array
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def file_name(index: int) -> str:
    return f"{index:06d}.jpg"


def _render_range(
    images_dir: str, seed: int, start: int, stop: int, size: tuple[int, int]
) -> list[list[dict[str, Any]]]:
    """Render and write images [start, stop); returns their people (runs in a worker)."""
    out: list[list[dict[str, Any]]] = []
    for index in range(start, stop):
        frame = render_frame(seed, index, size)
        Path(images_dir, file_name(index)).write_bytes(_jpeg(frame, seed, index))
        out.append(frame.people)
    return out


def _worker_init() -> None:
    cv2.setNumThreads(1)  # one process per core already


def _executor(parallel: str, workers: int) -> Executor | None:
    """Forked processes are fastest. Once TensorFlow is loaded its thread pools make fork unsafe, and a
    fresh interpreter (spawn/forkserver) would re-import the caller's script and TensorFlow in every worker,
    so then threads are used (OpenCV and numpy release the GIL for much of the drawing)."""
    if parallel == "auto":
        parallel = "thread" if "tensorflow" in sys.modules else "process"
    if parallel == "serial" or workers < 2:
        return None
    if parallel == "process":
        return ProcessPoolExecutor(workers, mp_context=get_context("fork"), initializer=_worker_init)
    if parallel == "thread":
        return ThreadPoolExecutor(workers)
    raise ValueError(f"parallel must be auto, process, thread or serial, not {parallel!r}")


def refuse_existing_dataset(out: Path) -> None:
    """Datasets are never overwritten: refuse an output folder that already holds one."""
    images = out / IMAGES_DIR
    if (out / "annotations.json").exists() or (images.is_dir() and any(images.iterdir())):
        raise DatasetError(
            f"{out} already holds a dataset",
            hint="choose a new --out directory (existing datasets are never overwritten)",
        )


def generate_synthetic(
    out: Path,
    n_images: int,
    seed: int = 0,
    size: tuple[int, int] = (384, 256),
    quiet: bool = True,
    *,
    parallel: str = "auto",
) -> Dataset:
    """Write `n_images` synthetic street images and their annotations to the canonical dataset dir `out`.

    `size` is (width, height). Same arguments -> byte-identical images and annotations, whatever the
    `parallel` mode ("auto", "process", "thread" or "serial").
    """
    out = Path(out)
    width, height = int(size[0]), int(size[1])
    if n_images < 1:
        raise DatasetError(f"cannot generate {n_images} images", hint="pass --images 1 or more")
    if width < 64 or height < 64 or width > 4096 or height > 4096:
        raise DatasetError(f"image size {width}x{height} is out of range", hint="use WxH between 64 and 4096")
    if seed < 0:
        raise DatasetError(f"seed {seed} is negative", hint="use a seed >= 0")
    refuse_existing_dataset(out)
    images_dir = out / IMAGES_DIR
    images_dir.mkdir(parents=True, exist_ok=True)

    chunk = SEQUENCE_LENGTH * 8  # whole sequences per task, so each worker reuses its cached backgrounds
    ranges = [(s, min(n_images, s + chunk)) for s in range(0, n_images, chunk)]
    results: list[list[dict[str, Any]]] = []
    progress = None
    if not quiet:
        from tqdm import tqdm

        progress = tqdm(total=n_images, desc="synth", unit="img")
    workers = min(os.cpu_count() or 1, len(ranges))
    pool = _executor(parallel, workers) if n_images >= PARALLEL_THRESHOLD else None
    if pool is not None:
        with pool:
            jobs = [
                pool.submit(_render_range, str(images_dir), seed, a, b, (width, height)) for a, b in ranges
            ]
            for job in jobs:
                part = job.result()
                results.extend(part)
                if progress is not None:
                    progress.update(len(part))
    else:
        for a, b in ranges:
            part = _render_range(str(images_dir), seed, a, b, (width, height))
            results.extend(part)
            if progress is not None:
                progress.update(len(part))
    if progress is not None:
        progress.close()

    dataset = Dataset(
        root=out,
        info={
            "description": "ModelOpsX synthetic street scenes with pedestrians",
            "generator": "modelopsx.data.synth",
            "generator_version": GENERATOR_VERSION,
            "seed": seed,
            "size": [width, height],
            "sequence_length": SEQUENCE_LENGTH,
        },
    )
    box_id = 1
    for index, people in enumerate(results):
        image_id = index + 1
        dataset.images.append(
            ImageRecord(
                id=image_id,
                file_name=file_name(index),
                width=width,
                height=height,
                group=f"synth-{seed}-{index // SEQUENCE_LENGTH:05d}",
            )
        )
        for person in people:
            dataset.annotations.append(
                Box(
                    id=box_id,
                    image_id=image_id,
                    bbox=person["bbox"],
                    iscrowd=0,
                    ignore=person["ignore"],
                    visibility=person["visibility"],
                    height=person["height"],
                    truncation=person["truncation"],
                )
            )
            box_id += 1
    dataset.save()
    return dataset
