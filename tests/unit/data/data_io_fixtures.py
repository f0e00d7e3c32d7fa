"""Builders for the data-io tests: real image files, canonical datasets and CLI runs, all in tmp_path."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from modelopsx.data.format import Box, Dataset, ImageRecord
from tests import cli_runner
from tests.cli_runner import Ran


def image_bytes(width: int, height: int, ext: str = ".jpg", seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(ext, pixels)
    assert ok
    return buf.tobytes()


def write_image(path: Path, width: int, height: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(width, height, path.suffix, seed))
    return path


def make_dataset(
    root: Path,
    n_images: int = 4,
    size: tuple[int, int] = (64, 48),
    groups: list[str] | None = None,
    boxes_per_image: int = 1,
) -> Dataset:
    """A small valid canonical dataset: JPEG images, one box per image by default."""
    dataset = Dataset(root=root, info={"name": "test"})
    width, height = size
    for i in range(n_images):
        name = f"img_{i:04d}.jpg"
        write_image(root / "images" / name, width, height, seed=i)
        group = groups[i] if groups else ""
        dataset.images.append(ImageRecord(id=i + 1, file_name=name, width=width, height=height, group=group))
        for _ in range(boxes_per_image):
            dataset.annotations.append(
                Box(
                    id=len(dataset.annotations) + 1,
                    image_id=i + 1,
                    bbox=[5.0, 6.0, 20.0, 30.0],
                    visibility=0.8,
                )
            )
    dataset.save()
    return dataset


def edit_annotations(root: Path, fn: Callable[[dict[str, Any]], None]) -> None:
    """Apply `fn` to the dataset's annotations.json in place (to break it on purpose)."""
    path = root / "annotations.json"
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def run_cli(*args: str | Path) -> Ran:
    return cli_runner.run_cli(*map(str, args), env={"COLUMNS": "400"})


def assert_clean_failure(result: Ran, *fragments: str) -> None:
    """Non-zero exit, each fragment in the output, and no traceback."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in " ".join(output.split()), output


def png_declaring(width: int, height: int) -> bytes:
    """A structurally complete PNG whose header declares width x height but holds only a few rows of data:
    a few hundred bytes that a decoder would expand to width * height pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = zlib.compress(b"\x00" * (1 + width) * 4)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
