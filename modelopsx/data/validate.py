"""Validate a canonical dataset and, on request, quarantine what is broken.

Every problem is an `Issue` naming its file and entry (`images[3] id=7`, `annotations[12] id=40`):
- errors: annotations not JSON / not COCO-shaped (fatal: nothing else can be checked), malformed or duplicate
  image entries, missing / empty / undecodable / truncated images, image size different from the entry,
  annotations for unknown image ids, duplicate annotation ids, non-positive box size, a box fully outside its
  image, a category other than pedestrian.
- warnings: a box partly outside its image (the intent is clear: it is clipped to the border), visibility
  outside 0..1 (clamped), files in images/ that no entry references, trailing bytes after a JPEG's end.

`quarantine=True` is the repair mode (see `repair`): what an error touches moves to `quarantine/`, boxes are
clipped and visibilities clamped in annotations.json, and nothing is deleted.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from modelopsx.data.format import ANNOTATIONS_FILE, IMAGES_DIR, PEDESTRIAN_ID, read_annotations
from modelopsx.data.image_integrity import check_image_bytes
from modelopsx.data.repair import quarantine_broken
from modelopsx.data.schema import annotation_entry_problems, image_entry_problems, is_integer
from modelopsx.data.validation_report import ERROR, WARNING, Issue, ValidationReport
from modelopsx.errors import DatasetError

# ------------------------------------------------------------------------------------------ the validator


class _Validator:
    def __init__(self, root: Path, quiet: bool, repair: bool) -> None:
        self.root = root
        self.quiet = quiet
        self.repair = repair
        self.report = ValidationReport(root=root)
        self.bad_images: set[int] = set()  # indices into data["images"]
        self.bad_annotations: set[int] = set()  # orphan annotation indices (their image is fine or unknown)
        self.clips: dict[int, list[float]] = {}  # annotation index -> clipped bbox
        self.clamps: dict[int, float] = {}  # annotation index -> clamped visibility

    def add(self, level: str, file: str, entry: str, message: str) -> None:
        self.report.issues.append(Issue(level, file, entry, message))

    def run(self) -> tuple[dict[str, Any] | None, ValidationReport]:
        try:
            data = read_annotations(self.root / ANNOTATIONS_FILE)
        except DatasetError as exc:
            self.add(ERROR, ANNOTATIONS_FILE, "", exc.message)
            self.report.fatal = True
            return None, self.report
        index_by_id = self._check_image_entries(data["images"])
        self._check_image_files(data["images"])
        self._check_annotations(data["images"], data.get("annotations", []), index_by_id)
        self._check_unreferenced(data["images"])
        return data, self.report

    def _check_image_entries(self, images: list[Any]) -> dict[int, int]:
        first_by_id: dict[int, int] = {}
        first_by_name: dict[str, int] = {}
        duplicate_ids: set[int] = set()
        for i, entry in enumerate(images):
            label = f"images[{i}]"
            problems = image_entry_problems(entry)  # the same check split and evaluate apply
            if problems:
                if isinstance(entry, dict) and is_integer(entry.get("id")):
                    label = f"images[{i}] id={entry['id']}"
                self._bad_image(i, ANNOTATIONS_FILE, label, "malformed entry: " + "; ".join(problems))
                continue
            image_id, name = int(entry["id"]), str(entry["file_name"])
            width, height = int(entry["width"]), int(entry["height"])
            label = f"images[{i}] id={image_id}"
            if width <= 0 or height <= 0:
                self._bad_image(i, ANNOTATIONS_FILE, label, f"non-positive size {width}x{height}")
            if image_id in first_by_id:
                duplicate_ids.add(image_id)
                self._bad_image(
                    i,
                    ANNOTATIONS_FILE,
                    label,
                    f"duplicate image id {image_id} (first at "
                    f"images[{first_by_id[image_id]}]); its boxes cannot be attributed",
                )
            else:
                first_by_id[image_id] = i
            if name in first_by_name:
                self._bad_image(
                    i,
                    ANNOTATIONS_FILE,
                    label,
                    f"file {name!r} is already used by images[{first_by_name[name]}]",
                )
            else:
                first_by_name[name] = i
        for image_id in duplicate_ids:  # the first holder is ambiguous too
            self.bad_images.add(first_by_id[image_id])
        return first_by_id

    def _bad_image(self, index: int, file: str, entry: str, message: str) -> None:
        self.bad_images.add(index)
        self.add(ERROR, file, entry, message)

    def _check_image_files(self, images: list[Any]) -> None:
        todo = [(i, e) for i, e in enumerate(images) if isinstance(e, dict) and _entry_is_checkable(e)]
        self.report.images_checked = len(todo)

        def check(
            item: tuple[int, dict[str, Any]],
        ) -> tuple[int, dict[str, Any], str | None, str | None, tuple[int, int] | None]:
            i, entry = item
            path = self.root / IMAGES_DIR / str(entry["file_name"])
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                return i, entry, "image file missing", None, None
            except OSError as exc:
                return i, entry, f"cannot read the image file ({exc.strerror})", None, None
            error, warning, size = check_image_bytes(data)
            return i, entry, error, warning, size

        results = _parallel(check, todo, "validating images", self.quiet)
        for i, entry, error, warning, size in results:
            file = f"{IMAGES_DIR}/{entry['file_name']}"
            label = f"images[{i}] id={entry.get('id')}"
            if error:
                self._bad_image(i, file, label, error)
                continue
            if warning:
                self.add(WARNING, file, label, warning)
            declared = (int(entry["width"]), int(entry["height"]))
            if size is not None and size != declared:
                self._bad_image(
                    i,
                    file,
                    label,
                    "size mismatch: annotations say "
                    f"{declared[0]}x{declared[1]}, the image is {size[0]}x{size[1]}",
                )

    def _check_annotations(
        self, images: list[Any], annotations: list[Any], index_by_id: dict[int, int]
    ) -> None:
        seen_ids: dict[int, int] = {}
        self.report.boxes_checked = len(annotations)
        for j, ann in enumerate(annotations):
            label = f"annotations[{j}]"
            if not isinstance(ann, dict):
                self._orphan(j, label, "entry is not an object")
                continue
            label = f"annotations[{j}] id={ann.get('id')}"
            problems = annotation_entry_problems(ann)  # the same check split and evaluate apply
            if not (is_integer(ann.get("id")) and is_integer(ann.get("image_id"))):
                self._orphan(j, label, "malformed entry: " + "; ".join(problems))
                continue
            ann_id, image_id = int(ann["id"]), int(ann["image_id"])
            label = f"annotations[{j}] id={ann_id} image_id={image_id}"
            image_index = index_by_id.get(image_id)
            if image_index is None:
                self._orphan(j, label, f"unknown image id {image_id}")
                continue
            image = images[image_index]

            def fail(message: str, image_index: int = image_index, label: str = label) -> None:
                self._bad_image(image_index, ANNOTATIONS_FILE, label, message)

            if ann_id in seen_ids:
                fail(f"duplicate annotation id {ann_id} (first at annotations[{seen_ids[ann_id]}])")
            seen_ids.setdefault(ann_id, j)
            if problems:
                fail("malformed entry: " + "; ".join(problems))
                continue
            if ann.get("category_id", PEDESTRIAN_ID) != PEDESTRIAN_ID:
                fail(f"category_id {ann.get('category_id')} is not pedestrian ({PEDESTRIAN_ID})")
            bbox = ann.get("bbox")
            try:
                x, y, w, h = (float(v) for v in bbox)  # type: ignore[union-attr]
                if not all(math.isfinite(v) for v in (x, y, w, h)):
                    raise ValueError
            except (TypeError, ValueError):
                fail(f"bbox {bbox!r} is not four finite numbers [x, y, w, h]")
                continue
            if w <= 0 or h <= 0:
                fail(f"box [{x:g}, {y:g}, {w:g}, {h:g}] has non-positive size (width {w:g}, height {h:g})")
                continue
            self._check_geometry(j, label, (x, y, w, h), image, fail)
            vis = ann.get("visibility", 1.0)
            if isinstance(vis, int | float) and not 0.0 <= float(vis) <= 1.0:
                self.clamps[j] = min(1.0, max(0.0, float(vis)))
                action = "clamped to" if self.repair else "--quarantine clamps it to"
                self.add(
                    WARNING,
                    ANNOTATIONS_FILE,
                    label,
                    f"visibility {vis} outside 0..1; {action} {self.clamps[j]:g}",
                )

    def _check_geometry(
        self,
        j: int,
        label: str,
        box: tuple[float, float, float, float],
        image: Any,
        fail: Callable[[str], None],
    ) -> None:
        try:
            width, height = float(image["width"]), float(image["height"])
        except (KeyError, TypeError, ValueError):
            return  # the image entry itself is already reported
        x, y, w, h = box
        x1, y1, x2, y2 = max(0.0, x), max(0.0, y), min(width, x + w), min(height, y + h)
        if x2 <= x1 or y2 <= y1:
            fail(f"box [{x:g}, {y:g}, {w:g}, {h:g}] lies fully outside the {width:g}x{height:g} image")
        elif (x1, y1, x2, y2) != (x, y, x + w, y + h):
            clipped = [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)]
            self.clips[j] = clipped
            kept = (x2 - x1) * (y2 - y1) / (w * h)
            action = "clipped to" if self.repair else "--quarantine clips it to"
            self.add(
                WARNING,
                ANNOTATIONS_FILE,
                label,
                f"box [{x:g}, {y:g}, {w:g}, {h:g}] extends past the "
                f"{width:g}x{height:g} image ({kept:.0%} inside); {action} {clipped}",
            )

    def _orphan(self, j: int, label: str, message: str) -> None:
        self.bad_annotations.add(j)
        self.add(ERROR, ANNOTATIONS_FILE, label, message)

    def _check_unreferenced(self, images: list[Any]) -> None:
        folder = self.root / IMAGES_DIR
        if not folder.is_dir():
            if images:
                self.add(ERROR, IMAGES_DIR, "", "images/ folder missing")
            return
        referenced = {str(e.get("file_name")) for e in images if isinstance(e, dict)}
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.relative_to(folder).as_posix() not in referenced:
                self.add(
                    WARNING,
                    f"{IMAGES_DIR}/{path.relative_to(folder).as_posix()}",
                    "",
                    "file is not referenced by annotations.json (ignored)",
                )


def _entry_is_checkable(entry: dict[str, Any]) -> bool:
    return not image_entry_problems(entry)


def _parallel(fn: Callable[[Any], Any], items: list[Any], description: str, quiet: bool) -> list[Any]:
    """Map `fn` over `items` on a few threads (OpenCV decode and file reads release the GIL)."""
    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(fn, items)
        if quiet:
            return list(results)
        from rich.progress import track

        return list(track(results, total=len(items), description=description, transient=True))


def validate_and_read(root: Path) -> tuple[dict[str, Any] | None, ValidationReport]:
    """Check a dataset directory (no repairs) and return its parsed annotations too (None when unreadable),
    so a caller that goes on to hash or count the dataset parses annotations.json once."""
    return _Validator(Path(root), True, repair=False).run()


def validate_dataset(root: Path, quarantine: bool = False, quiet: bool = True) -> ValidationReport:
    """Check a dataset directory; with `quarantine=True` move broken entries out (see the module doc)."""
    root = Path(root)
    validator = _Validator(root, quiet, repair=quarantine)
    data, report = validator.run()
    if quarantine and data is not None:
        quarantine_broken(root, data, validator)
    return report
