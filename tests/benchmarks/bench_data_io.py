"""Dataset I/O benchmark: validation and content hashing vs their tight-loop ceilings, one run, as ratios.

- validate: `validate_dataset` (read + JPEG structure walk + full decode + box checks, on a few threads) vs
  the decode-only ceiling (the same files decoded with `cv2.imdecode` in a tight single-threaded loop).
- hash: `dataset_version_hash` vs a naive loop (`sha256(path.read_bytes())` per file, one thread).
- split: images per second through `split_dataset` (hardlinks + three content hashes).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from modelopsx.data.format import Box, Dataset, ImageRecord
from modelopsx.data.hashing import dataset_version_hash
from modelopsx.data.split import split_dataset
from modelopsx.data.validate import validate_dataset

N_IMAGES = 600
SIZE = (640, 480)


def _make(root: Path) -> Dataset:
    rng = np.random.default_rng(0)
    w, h = SIZE
    xs, ys = np.meshgrid(np.linspace(0, 255, w), np.linspace(0, 255, h))
    base = np.dstack([xs, ys, np.full((h, w), 128.0)])
    ds = Dataset(root=root)
    (root / "images").mkdir(parents=True)
    for i in range(N_IMAGES):
        noisy = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        name = f"{i:05d}.jpg"
        cv2.imwrite(str(root / "images" / name), noisy, [cv2.IMWRITE_JPEG_QUALITY, 90])
        ds.images.append(ImageRecord(id=i + 1, file_name=name, width=w, height=h, group=f"g{i // 4}"))
        ds.annotations.append(Box(id=i + 1, image_id=i + 1, bbox=[10, 20, 40, 100]))
    ds.save()
    return ds


def _best_of(fn, repeats: int = 3) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-data-io-"))
    try:
        ds = _make(tmp / "ds")
        paths = [ds.image_path(img) for img in ds.images]
        megabytes = sum(p.stat().st_size for p in paths) / 1e6

        def decode_only() -> None:
            for p in paths:
                cv2.imdecode(np.frombuffer(p.read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)

        def naive_hash() -> None:
            for p in paths:
                hashlib.sha256(p.read_bytes()).hexdigest()

        t_decode = _best_of(decode_only)
        t_validate = _best_of(lambda: validate_dataset(ds.root))
        t_naive = _best_of(naive_hash)
        t_hash = _best_of(lambda: dataset_version_hash(ds.root))
        counter = iter(range(100))
        t_split = _best_of(lambda: split_dataset(ds.root, tmp / f"split{next(counter)}"), repeats=2)

        print(f"{N_IMAGES} JPEGs {SIZE[0]}x{SIZE[1]}, {megabytes:.1f} MB")
        print(
            f"validate      {N_IMAGES / t_validate:7.0f} img/s | decode-only ceiling "
            f"{N_IMAGES / t_decode:7.0f} img/s | ratio {t_decode / t_validate:.2f}"
        )
        print(
            f"content hash  {megabytes / t_hash:7.0f} MB/s  | naive sha256 loop   "
            f"{megabytes / t_naive:7.0f} MB/s  | ratio {t_naive / t_hash:.2f}"
        )
        print(f"split         {N_IMAGES / t_split:7.0f} img/s (hardlinks + 3 content hashes)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
