"""Quarantine repair: move what validation found broken out of a dataset, keeping every byte.

Every image touched by an error moves, with its annotations, to `quarantine/` (file under quarantine/images/,
entries in quarantine/report.json), orphan annotations go to the report too, clipped boxes and clamped
visibilities are written back, and annotations.json is rewritten atomically. The previous annotations.json is
kept as quarantine/annotations.before-N.json: nothing is deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Protocol

from modelopsx.data.format import ANNOTATIONS_FILE, IMAGES_DIR
from modelopsx.data.paths import relative_name_problem
from modelopsx.data.validation_report import ERROR, Issue, ValidationReport

QUARANTINE_DIR = "quarantine"


class Findings(Protocol):
    """What validation found, as the repair acts on it (indices into the annotation file's lists)."""

    report: ValidationReport
    bad_images: set[int]
    bad_annotations: set[int]  # orphan annotations (their image is fine or unknown)
    clips: dict[int, list[float]]  # annotation index -> clipped bbox
    clamps: dict[int, float]  # annotation index -> clamped visibility


def _safe_relative(name: str) -> bool:
    return relative_name_problem(name) is None


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


def quarantine_broken(root: Path, data: dict[str, Any], v: Findings) -> None:
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
