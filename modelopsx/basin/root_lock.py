"""One emulator per root: an exclusive lock on `<root>/server.lock`, whose content names the holder.

Two servers on one root would each clean the other's temporary bodies and race on its uploads, so the
second is refused. The lock is `flock` on an open file: the kernel drops it when the holder exits, however it
exits, so a crash never leaves a stale lock behind. The file's JSON (pid, endpoint, auth mode and access key
id, never the secret) only serves to name the holder in the refusal.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelopsx.errors import StorageError

LOCK_FILE = "server.lock"


@dataclass(frozen=True)
class LockHolder:
    """What the holding process wrote about itself; None where it had not written it yet."""

    pid: int | None = None
    endpoint: str | None = None
    auth: str | None = None  # "sigv4" or "none"
    access_key: str | None = None
    started: float | None = None

    def describe(self) -> str:
        if self.pid is None:
            pid = "pid unknown"
        else:
            pid = f"pid {self.pid}" + (", this process" if self.pid == os.getpid() else "")
        where = f"serving {self.endpoint}" if self.endpoint else "not serving yet"
        return f"{pid}, {where}"


class RootInUseError(StorageError):
    """Another process holds the emulator root."""

    def __init__(self, root: Path, holder: LockHolder) -> None:
        self.root = root
        self.holder = holder
        use = f"use it (MODELOPSX_BASIN_ENDPOINT={holder.endpoint}) or " if holder.endpoint else ""
        stop = f"stop it (kill {holder.pid})" if holder.pid is not None else "stop it"
        super().__init__(
            f"the Basin emulator root {root} is in use by another process ({holder.describe()}); "
            "one emulator serves a root at a time",
            hint=f"{use}{stop} first, or give this one another --root",
        )


def read_holder(path: Path) -> LockHolder:
    """The holder named in a lock file; empty fields when it is unreadable or not written yet."""
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return LockHolder()
    if not isinstance(raw, dict):
        return LockHolder()

    def text(name: str) -> str | None:
        value = raw.get(name)
        return value if isinstance(value, str) else None

    pid = raw.get("pid")
    started = raw.get("started")
    return LockHolder(
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        endpoint=text("endpoint"),
        auth=text("auth"),
        access_key=text("access_key"),
        started=float(started) if isinstance(started, int | float) else None,
    )


class RootLock:
    """The exclusive lock on one root; `acquire` raises RootInUseError while another holder has it."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.path = self.root / LOCK_FILE
        self._fd: int | None = None
        self._fields: dict[str, Any] = {}

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RootInUseError(self.root, read_holder(self.path)) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._fields = {"pid": os.getpid(), "started": time.time()}
        self._write()

    def record(self, **fields: Any) -> None:
        """Add facts about the holder (its endpoint once it listens) for a refused newcomer to quote."""
        self._fields.update(fields)
        self._write()

    def _write(self) -> None:
        if self._fd is None:
            return
        data = json.dumps(self._fields).encode("utf-8")
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # the next holder writes its own facts; none of ours may linger
        os.close(fd)  # closing the last descriptor drops the flock
