"""What dataset validation reports: each problem as an `Issue`, and the run as a `ValidationReport`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
