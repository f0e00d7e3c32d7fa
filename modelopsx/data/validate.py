"""Validate a canonical dataset and, on request, quarantine what is broken.

Every problem is an `Issue` naming its file and entry (`images[3] id=7`, `annotations[12] id=40`):
- errors: annotations not JSON / not COCO-shaped (fatal: nothing else can be checked), malformed or duplicate
  image entries, missing / empty / undecodable / truncated images, image size different from the entry,
  annotations for unknown image ids, duplicate annotation ids, non-positive box size, a box fully outside its
  image, a category other than pedestrian.
- warnings: a box partly outside its image (the intent is clear: it is clipped to the border), visibility
  outside 0..1 (clamped), files in images/ that no entry references, trailing bytes after a JPEG's end.

`quarantine=True` is the repair mode: every image touched by an error moves, with its annotations, to
`quarantine/` (file under quarantine/images/, entries in quarantine/report.json), orphan annotations go to the
report too, clipped boxes are written back, and annotations.json is rewritten atomically. The previous
annotations.json is kept as quarantine/annotations.before-N.json: nothing is deleted.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelopsx.data.format import ANNOTATIONS_FILE, IMAGES_DIR, PEDESTRIAN_ID, read_annotations
from modelopsx.data.image_limits import ImageTooLarge, header_size
from modelopsx.data.paths import relative_name_problem
from modelopsx.data.schema import annotation_entry_problems, image_entry_problems, is_integer
from modelopsx.errors import DatasetError

QUARANTINE_DIR = "quarantine"
ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Issue:
    level: str  # "error" or "warning"
    file: str  # relative to the dataset root: "annotations.json" or "images/<name>"
    entry: str  # "images[3] id=7", "annotations[12] id=40", or "" for the file as a whole
    message: str
    resolution: str = ""  # what --quarantine did / would do: "quarantined", "clipped", ...

    def __str__(self) -> str:
        where = f"{self.file}: {self.entry}" if self.entry else self.file
        return f"{where}: {self.message}"

    def to_json(self) -> dict[str, str]:
        return {
            "level": self.level,
            "file": self.file,
            "entry": self.entry,
            "message": self.message,
            "resolution": self.resolution,
        }


@dataclass
class ValidationReport:
    """`.errors` / `.warnings` are the unresolved problems as strings; `.issues` keeps the structure."""

    root: Path
    issues: list[Issue] = field(default_factory=list)
    images_checked: int = 0
    boxes_checked: int = 0
    fatal: bool = False
    quarantined_images: int = 0
    quarantined_annotations: int = 0
    clipped_boxes: int = 0
    quarantine_report: Path | None = None

    @property
    def errors(self) -> list[str]:
        return [str(i) for i in self.issues if i.level == ERROR and i.resolution != "quarantined"]

    @property
    def warnings(self) -> list[str]:
        return [str(i) for i in self.issues if i.level == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "ok": self.ok,
            "fatal": self.fatal,
            "images_checked": self.images_checked,
            "boxes_checked": self.boxes_checked,
            "quarantined_images": self.quarantined_images,
            "quarantined_annotations": self.quarantined_annotations,
            "clipped_boxes": self.clipped_boxes,
            "issues": [i.to_json() for i in self.issues],
        }


# ----------------------------------------------------------------------------------------------- images


class JpegStructureError(ValueError):
    """The bytes break JPEG's segment structure (not merely cut short)."""


def jpeg_end(data: bytes) -> int | None:
    """Offset just past the JPEG's EOI marker, or None if the data ends first (truncated).

    Raises JpegStructureError where a marker should be and is not.

    Walks the segment structure (lengths skip APPn payloads such as EXIF thumbnails, whose own EOI must not
    count) and scans entropy-coded data for the next real marker (FF 00 is stuffing, FF D0..D7 are restarts).
    """
    n, pos = len(data), 2
    while pos < n:
        if data[pos] != 0xFF:
            raise JpegStructureError(f"byte {pos} should start a marker")
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            return None
        marker = data[pos]
        if marker == 0x00:
            raise JpegStructureError(f"invalid marker at byte {pos}")
        pos += 1
        if marker == 0xD9:
            return pos
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue
        if pos + 2 > n:
            return None
        pos += int.from_bytes(data[pos : pos + 2], "big")
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next marker
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= n:
                    return None
                following = data[pos + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
                    pos += 1
                    continue
                break
    return None


def png_end(data: bytes) -> int | None:
    """Offset just past the PNG's IEND chunk, or None if the chunk list is cut short."""
    n, pos = len(data), 8
    while pos + 8 <= n:
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        pos += 12 + length
        if pos > n:
            return None
        if kind == b"IEND":
            return pos
    return None


def check_image_bytes(data: bytes) -> tuple[str | None, str | None, tuple[int, int] | None]:
    """(error, warning, (width, height)) for encoded image bytes; decodes fully with OpenCV.

    A truncated JPEG often still decodes (libjpeg pads the missing rows with grey), so JPEG and PNG files must
    also be structurally complete (EOI marker / IEND chunk reached).
    """
    if not data:
        return "empty file (0 bytes)", None, None
    import cv2
    import numpy as np

    warning = None
    end: int | None = len(data)
    if data[:3] == b"\xff\xd8\xff":
        try:
            end = jpeg_end(data)
        except JpegStructureError as exc:  # libjpeg tolerates some junk: let the decoder decide
            warning, end = f"irregular JPEG structure ({exc})", None
        else:
            if end is None:
                return "truncated or corrupt JPEG (end-of-image marker FF D9 never reached)", None, None
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        end = png_end(data)
        if end is None:
            return "truncated PNG (data ends before the IEND chunk)", None, None
    if end is not None and data[end:].strip(b"\x00\r\n "):
        warning = f"{len(data) - end} extra byte(s) after the end of the image"
    try:
        header_size(data)
    except ImageTooLarge as exc:
        return str(exc), None, None
    except Exception:  # noqa: BLE001 - a header Pillow cannot read: the decoder below judges the image
        pass
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # e.g. OpenCV's own pixel limit, for a format Pillow does not read
        return f"not a decodable image ({str(exc).strip().splitlines()[-1]})", None, None
    if image is None or image.size == 0:
        return "not a decodable image (corrupt or unsupported format)", None, None
    return None, warning, (int(image.shape[1]), int(image.shape[0]))


def _safe_relative(name: str) -> bool:
    return relative_name_problem(name) is None


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


# ---------------------------------------------------------------------------------------------- quarantine


def _next_free(path: Path) -> Path:
    if not path.exists():
        return path
    n = 2
    while True:
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        if not candidate.exists():
            return candidate
        n += 1


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, path)


def _quarantine(root: Path, data: dict[str, Any], v: _Validator) -> None:
    report = v.report
    images: list[Any] = data["images"]
    annotations: list[Any] = data.get("annotations", [])
    if not (v.bad_images or v.bad_annotations or v.clips or v.clamps):
        return
    bad_ids = set()
    for i in v.bad_images:
        if isinstance(images[i], dict):
            with contextlib.suppress(KeyError, TypeError, ValueError):
                bad_ids.add(int(images[i]["id"]))
    good_ids = {int(e["id"]) for i, e in enumerate(images) if i not in v.bad_images}
    moved_annotations: list[Any] = []
    kept_annotations: list[Any] = []
    for j, ann in enumerate(annotations):
        image_id = ann.get("image_id") if isinstance(ann, dict) else None
        try:
            belongs_to_bad = int(image_id) in bad_ids - good_ids  # type: ignore[arg-type]
        except (TypeError, ValueError):
            belongs_to_bad = False
        if j in v.bad_annotations or belongs_to_bad:
            moved_annotations.append(ann)
            continue
        if j in v.clips or j in v.clamps:
            ann = dict(ann)
            if j in v.clips:
                ann["bbox"] = v.clips[j]
                ann["area"] = round(v.clips[j][2] * v.clips[j][3], 3)
                if "height" in ann:
                    ann["height"] = v.clips[j][3]
            if j in v.clamps:
                ann["visibility"] = v.clamps[j]
        kept_annotations.append(ann)

    qdir = root / QUARANTINE_DIR
    (qdir / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    backup = _next_free(qdir / "annotations.before.json")
    shutil.copyfile(root / ANNOTATIONS_FILE, backup)
    moved_files: dict[str, str] = {}
    quarantined_entries = [images[i] for i in sorted(v.bad_images)]
    report_path = _next_free(qdir / "report.json")
    payload = {
        "dataset": str(root),
        "annotations_backup": backup.name,
        "images": quarantined_entries,
        "annotations": moved_annotations,
        "moved_files": moved_files,
        "issues": [i.to_json() for i in report.issues],
    }
    _write_json_atomic(report_path, payload)  # first, so a crash mid-way still leaves the record
    for i in sorted(v.bad_images):
        entry = images[i]
        name = entry.get("file_name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not _safe_relative(name):
            continue
        src = root / IMAGES_DIR / name
        if src.is_file() and name not in moved_files:
            dst = _next_free(qdir / IMAGES_DIR / name)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            moved_files[name] = dst.relative_to(root).as_posix()
    _write_json_atomic(report_path, payload)
    new_data = dict(data)
    new_data["images"] = [e for i, e in enumerate(images) if i not in v.bad_images]
    new_data["annotations"] = kept_annotations
    _write_json_atomic(root / ANNOTATIONS_FILE, new_data)

    report.issues = [
        Issue(
            i.level,
            i.file,
            i.entry,
            i.message,
            "quarantined"
            if i.level == ERROR
            else ("fixed" if "clipped to" in i.message or "clamped to" in i.message else ""),
        )
        for i in report.issues
    ]
    report.quarantined_images = len(v.bad_images)
    report.quarantined_annotations = len(moved_annotations)
    report.clipped_boxes = len(v.clips)
    report.quarantine_report = report_path


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
        _quarantine(root, data, validator)
    return report
