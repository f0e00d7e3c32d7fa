"""Object files the emulator cannot account for are moved aside, never deleted.

A torn or hand-edited record (the `.json` sidecar), a record whose data file is missing or has another size,
and a data file that no record names are each moved, with their neighbours of the same key, to
`<root>/quarantine/<UTC time>-<pid>/<store>/...` and listed in that folder's `report.json`. The key is then
free: it can be written again, and an operator can inspect or restore what was moved.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

QUARANTINE_DIR = "quarantine"


@dataclass(frozen=True)
class QuarantinedObject:
    """One key's files moved aside: why, and where they went (relative to the quarantine folder)."""

    store: str
    key: str | None  # None when the record was too damaged to name it
    reason: str
    files: tuple[str, ...]
    data_bytes: int


class Quarantine:
    """The quarantine folder of one opening of the store; created only when something is moved."""

    def __init__(self, root: Path) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.folder = Path(root) / QUARANTINE_DIR / f"{stamp}-{os.getpid()}"
        self.entries: list[QuarantinedObject] = []
        self._lock = threading.Lock()

    def move(self, store: str, key: str | None, reason: str, paths: list[Path]) -> QuarantinedObject:
        """Move `paths` (one key's files in a store) aside and record why; a file already gone is skipped."""
        moved: list[str] = []
        data_bytes = 0
        for path in paths:
            relative = Path(store) / path.parent.name / path.name
            target = self.folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                size = path.stat().st_size
                os.replace(path, target)  # same filesystem: a rename, so nothing is copied or lost
            except FileNotFoundError:
                continue
            moved.append(str(relative))
            if path.suffix == ".data":
                data_bytes += size
        entry = QuarantinedObject(store, key, reason, tuple(moved), data_bytes)
        with self._lock:
            self.entries.append(entry)
            self._write_report()
        return entry

    def _write_report(self) -> None:
        report = {
            "what": "object files the Basin emulator could not account for; moved here, not deleted",
            "objects": [asdict(e) for e in self.entries],
        }
        tmp = self.folder / "report.json.tmp"
        tmp.write_text(json.dumps(report, indent=2), encoding="utf-8")
        os.replace(tmp, self.folder / "report.json")

    @property
    def data_bytes(self) -> int:
        return sum(e.data_bytes for e in self.entries)

    def summary(self) -> str:
        """One line for the start-up report."""
        n = len(self.entries)
        return (
            f"quarantined {n} damaged or unaccounted object{'s' if n != 1 else ''} "
            f"({self.data_bytes} bytes of data) to {self.folder} (see report.json there); "
            "nothing was deleted, and their keys can be written again"
        )
