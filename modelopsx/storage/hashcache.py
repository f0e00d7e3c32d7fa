"""A cache of local files' CIDs keyed by (path, size, mtime, inode), so a no-op sync re-reads nothing.

Like DVC's state database and git's index, it trusts a file's stat only when the file was last modified
well before the CID was recorded (the "racy" window): a file rewritten within the same clock tick and with
the same size is re-hashed rather than mistaken for unchanged.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from modelopsx import settings

RACY_NS = 2_000_000_000  # mtimes this close to the recording time are not trusted


class HashCache:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or settings.cache_dir() / "cids.sqlite"
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=5, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS cids (path TEXT PRIMARY KEY, size INTEGER, "
                "mtime_ns INTEGER, ino INTEGER, cid TEXT, recorded_ns INTEGER)"
            )
            self._db = db
        except (OSError, sqlite3.Error):
            self._db = None  # an unusable cache only costs re-hashing

    def get(self, path: Path, stat: os.stat_result) -> str | None:
        if self._db is None:
            return None
        with self._lock:
            try:
                row = self._db.execute(
                    "SELECT size, mtime_ns, ino, cid, recorded_ns FROM cids WHERE path = ?", (str(path),)
                ).fetchone()
            except sqlite3.Error:
                return None
        if row is None:
            return None
        size, mtime_ns, ino, cid, recorded_ns = row
        if (size, mtime_ns, ino) != (stat.st_size, stat.st_mtime_ns, stat.st_ino):
            return None
        if stat.st_mtime_ns >= recorded_ns - RACY_NS:
            return None
        return str(cid)

    def put_many(self, entries: list[tuple[Path, os.stat_result, str]]) -> None:
        if self._db is None or not entries:
            return
        now = time.time_ns()
        rows = [(str(p), s.st_size, s.st_mtime_ns, s.st_ino, cid, now) for p, s, cid in entries]
        with self._lock:
            try:
                with self._db:
                    self._db.executemany("INSERT OR REPLACE INTO cids VALUES (?, ?, ?, ?, ?, ?)", rows)
            except sqlite3.Error:
                pass

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
