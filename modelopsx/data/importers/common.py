"""Shared pieces of the importers: output-folder checks, a staging writer, image headers, progress."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from modelopsx.data.format import ANNOTATIONS_FILE, IMAGES_DIR, Box, Dataset, ImageRecord
from modelopsx.data.image_limits import ImageTooLarge, header_size
from modelopsx.errors import DatasetError

T = TypeVar("T")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp")


def check_output_dir(out: Path) -> None:
    """Refuse to write into a folder that already has content: nothing stored is ever overwritten."""
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out}: exists and is not a folder", hint="choose another --out path")
    if out.is_dir() and any(out.iterdir()):
        what = "a dataset" if (out / ANNOTATIONS_FILE).exists() else "files"
        raise DatasetError(
            f"{out}: already holds {what}; nothing was written",
            hint="choose a new or empty --out folder (existing data is never overwritten)",
        )


def image_size(source: Path | bytes, label: str | None = None) -> tuple[int, int]:
    """(width, height) from the image header (no full decode); DatasetError naming the file if unreadable."""
    from PIL import UnidentifiedImageError

    name = label or str(source if isinstance(source, Path) else "<image bytes>")
    try:
        if isinstance(source, Path) and source.stat().st_size == 0:
            raise DatasetError(
                f"{name}: image file is empty (0 bytes)", hint="re-download or remove the image"
            )
        width, height = header_size(source)
    except ImageTooLarge as exc:
        raise DatasetError(f"{name}: {exc}", hint="remove this image from the source") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DatasetError(
            f"{name}: not a readable image ({exc})", hint="re-download the image or remove it from the source"
        ) from None
    return int(width), int(height)


def image_suffix(data: bytes) -> str:
    """File suffix from an encoded image's magic bytes (TFDS hands out encoded bytes without a name)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if data[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if data[:2] == b"BM":
        return ".bmp"
    return ".img"


def progress(items: Iterable[T], total: int | None, description: str, quiet: bool) -> Iterator[T]:
    """A rich progress bar over `items` unless `quiet`."""
    if quiet:
        yield from items
        return
    from rich.progress import track

    yield from track(items, total=total, description=description, transient=True)


class DatasetWriter:
    """Builds a canonical dataset in a staging folder beside `out`; `commit()` renames it into place.

    So an import either lands completely or not at all, and a failed import leaves `out` untouched.
    """

    def __init__(self, out: Path, info: dict[str, Any]) -> None:
        check_output_dir(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.importing-", dir=out.parent))
        (self.stage / IMAGES_DIR).mkdir()
        self.dataset = Dataset(root=self.stage, info=dict(info))
        self.warnings: list[str] = []
        self.clipped = 0
        self.dropped = 0
        self._names: set[str] = set()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()

    def _unique_name(self, wanted: str) -> str:
        stem, suffix = os.path.splitext(wanted.replace("\\", "/").split("/")[-1])
        name, n = f"{stem}{suffix}", 1
        while name in self._names:
            n += 1
            name = f"{stem}_{n}{suffix}"
        self._names.add(name)
        return name

    def add_image_file(
        self,
        src: Path,
        group: str = "",
        declared_size: tuple[int, int] | None = None,
        extra: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> ImageRecord:
        """Copy an image file in (as `name`, default its own name).

        The real size (from the header) wins over a declared one, with a warning.
        """
        if not src.is_file():
            raise DatasetError(f"{src}: image file not found", hint="check the source folder layout")
        width, height = image_size(src)
        self._check_declared(src.name, (width, height), declared_size)
        name = self._unique_name(name or src.name)
        shutil.copyfile(src, self.stage / IMAGES_DIR / name)
        return self._record(name, width, height, group, extra)

    def add_image_bytes(
        self, data: bytes, file_name: str, group: str = "", extra: dict[str, Any] | None = None
    ) -> ImageRecord:
        width, height = image_size(data, label=file_name)
        stem = os.path.splitext(file_name)[0] if file_name else f"image_{len(self.dataset.images) + 1:06d}"
        name = self._unique_name(stem + image_suffix(data))
        (self.stage / IMAGES_DIR / name).write_bytes(data)
        return self._record(name, width, height, group, extra)

    def _check_declared(self, name: str, real: tuple[int, int], declared: tuple[int, int] | None) -> None:
        if declared is not None and tuple(declared) != real:
            self.warnings.append(
                f"{name}: annotation says {declared[0]}x{declared[1]}, image is "
                f"{real[0]}x{real[1]}; using the image's size"
            )

    def _record(
        self, name: str, width: int, height: int, group: str, extra: dict[str, Any] | None
    ) -> ImageRecord:
        record = ImageRecord(
            id=len(self.dataset.images) + 1,
            file_name=name,
            width=width,
            height=height,
            group=group,
            extra=dict(extra or {}),
        )
        self.dataset.images.append(record)
        return record

    def add_box(
        self,
        image: ImageRecord,
        x: float,
        y: float,
        w: float,
        h: float,
        *,
        ignore: int = 0,
        iscrowd: int = 0,
        visibility: float = 1.0,
        truncation: float | None = None,
        where: str = "",
        extra: dict[str, Any] | None = None,
    ) -> Box | None:
        """Add a 0-based [x, y, w, h] box, clipped to the image; dropped with a warning if none is left."""
        label = where or image.file_name
        if not all(math.isfinite(v) for v in (x, y, w, h)):  # max/min would turn NaN into the image border
            raise DatasetError(
                f"{label}: box [{x:g}, {y:g}, {w:g}, {h:g}] has a coordinate that is not a finite number",
                hint="fix or remove this box in the source annotations",
            )
        x1, y1 = max(0.0, x), max(0.0, y)
        x2, y2 = min(float(image.width), x + w), min(float(image.height), y + h)
        if x2 <= x1 or y2 <= y1:
            self.dropped += 1
            self.warnings.append(
                f"{label}: box [{x:g}, {y:g}, {w:g}, {h:g}] has no area inside the "
                f"{image.width}x{image.height} image; dropped"
            )
            return None
        if (x1, y1, x2, y2) != (x, y, x + w, y + h):
            self.clipped += 1
        box = Box(
            id=len(self.dataset.annotations) + 1,
            image_id=image.id,
            bbox=[x1, y1, x2 - x1, y2 - y1],
            iscrowd=int(iscrowd),
            ignore=int(ignore or iscrowd),
            visibility=float(visibility),
            truncation=truncation,
            extra=dict(extra or {}),
        )
        self.dataset.annotations.append(box)
        return box

    def commit(self) -> Dataset:
        """Write annotations.json, then move the staging folder to `out` (re-checked, never overwritten)."""
        if not self.dataset.images:
            raise DatasetError("the source holds no images to import", hint="check the source folder layout")
        if self.clipped:
            self.warnings.append(f"{self.clipped} box(es) extended past the image border and were clipped")
        self.dataset.info.setdefault("warnings", len(self.warnings))
        self.dataset.save()
        check_output_dir(self.out)
        if self.out.is_dir():
            self.out.rmdir()  # empty (checked above); rename needs the name free
        os.replace(self.stage, self.out)
        self.dataset.root = self.out
        return self.dataset

    def abort(self) -> None:
        shutil.rmtree(self.stage, ignore_errors=True)
