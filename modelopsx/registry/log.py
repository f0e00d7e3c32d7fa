"""The registry: an append-only log of JSON records on an object store.

Keys are ``registry/<kind>/<name>/<seq:08d>.json``. Appending is a put-if-absent of ``max(seq) + 1``; when
another writer won that sequence number the append re-lists and retries (bounded, with jittered backoff), so
N concurrent writers never lose or overwrite a record and the sequence stays gap-free. Records are never
rewritten. Reading lists with ``iter_all`` (which shards prefixes under Basin's 10,000-object list cap) and
sorts by sequence, because Basin lists in no particular order.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from modelopsx.errors import KeyExistsError, NotFoundError, StorageError, UserError
from modelopsx.storage.base import ObjectStore

KINDS = ("datasets", "models", "evaluations", "promotions")
ROOT = "registry"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_SEQ_RE = re.compile(r"^(\d{8,})\.json$")


class RegistryError(UserError):
    """A registry name, kind or version is wrong, or the log cannot be appended to."""


class AppendConflictError(RegistryError):
    """Too many concurrent writers won the race for the next sequence number."""


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise RegistryError(f"unknown registry kind {kind!r}", hint=f"use one of: {', '.join(KINDS)}")
    return kind


def check_name(name: str) -> str:
    if not _NAME_RE.match(name or ""):
        raise RegistryError(
            f"invalid registry name {name!r}",
            hint="use 1-100 characters of letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return name


def record_key(kind: str, name: str, seq: int) -> str:
    return f"{ROOT}/{check_kind(kind)}/{check_name(name)}/{seq:08d}.json"


class Registry:
    """Append-only records of datasets, models, evaluations and promotions on one object store."""

    def __init__(
        self, store: ObjectStore, max_attempts: int = 64, backoff_s: float = 0.02, max_backoff_s: float = 0.5
    ) -> None:
        self.store = store
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        # Records are immutable, so reading each key once per process is enough.
        self._cache: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.stats = {"appends": 0, "conflicts": 0}

    @property
    def url(self) -> str:
        return getattr(self.store, "url", "")

    def _prefix(self, kind: str, name: str) -> str:
        return f"{ROOT}/{check_kind(kind)}/{check_name(name)}/"

    def sequence_numbers(self, kind: str, name: str) -> list[int]:
        """Every stored sequence number of this log, ascending."""
        prefix = self._prefix(kind, name)
        seqs = []
        for info in self.store.iter_all(prefix):
            match = _SEQ_RE.match(info.key[len(prefix) :])
            if match:
                seqs.append(int(match.group(1)))
        return sorted(seqs)

    def names(self, kind: str) -> list[str]:
        """The names that have records of this kind, sorted."""
        prefix = f"{ROOT}/{check_kind(kind)}/"
        listing = self.store.list(prefix, delimiter="/")
        names = {p[len(prefix) :].strip("/") for p in listing.prefixes}
        if not names and listing.objects:  # stores without delimiter support
            names = {o.key[len(prefix) :].split("/", 1)[0] for o in listing.objects}
        return sorted(n for n in names if n)

    def append(self, kind: str, name: str, record: dict[str, Any], seq_fields: tuple[str, ...] = ()) -> int:
        """Append a record and return its sequence number (1, 2, ...).

        The stored body gets "seq", "kind", "name", "record_id" and "created_at" (unless given), plus each of
        `seq_fields` set to the sequence number (datasets use "version"). A put that succeeded but whose reply
        was lost is recognised on retry by its record_id, so a record is never written twice.
        """
        key_prefix = self._prefix(kind, name)
        body = dict(record)
        body.setdefault("created_at", datetime.now(UTC).isoformat())
        record_id = str(body.setdefault("record_id", uuid.uuid4().hex))
        rng = random.Random()
        delay = self.backoff_s
        for _attempt in range(self.max_attempts):
            seqs = self.sequence_numbers(kind, name)
            seq = seqs[-1] + 1 if seqs else 1
            stored = {**body, "kind": kind, "name": name, "seq": seq, **{f: seq for f in seq_fields}}
            data = (json.dumps(stored, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")
            key = f"{key_prefix}{seq:08d}.json"
            try:
                self.store.put_if_absent(key, data, metadata={"content-type": "application/json"})
            except KeyExistsError:
                if self._read(key).get("record_id") == record_id:  # our own earlier put landed
                    return self._appended(key, stored)
                with self._lock:
                    self.stats["conflicts"] += 1
                time.sleep(rng.uniform(0, delay))
                delay = min(delay * 2, self.max_backoff_s)
                continue
            return self._appended(key, stored)
        raise AppendConflictError(
            f"could not append to {key_prefix} in {self.max_attempts} attempts: other writers kept winning",
            hint="retry the command; if it persists, fewer writers should append to the same name at once",
        )

    def _appended(self, key: str, stored: dict[str, Any]) -> int:
        with self._lock:
            self.stats["appends"] += 1
            self._cache[key] = stored
        return int(stored["seq"])

    def _read(self, key: str) -> dict[str, Any]:
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        try:
            record = json.loads(self.store.get(key))
        except json.JSONDecodeError as exc:
            raise StorageError(
                f"registry record {key} is not valid JSON: {exc}",
                hint="the store holds a damaged record; records are never rewritten, inspect it",
            ) from exc
        if not isinstance(record, dict):
            raise StorageError(f"registry record {key} is not a JSON object")
        with self._lock:
            self._cache[key] = record
        return record

    def records(self, kind: str, name: str) -> list[dict[str, Any]]:
        """Every record of this log, sorted by seq (each carries "seq")."""
        keys = [record_key(kind, name, s) for s in self.sequence_numbers(kind, name)]
        if len(keys) > 8:
            with ThreadPoolExecutor(max_workers=8) as pool:
                return list(pool.map(self._read, keys))
        return [self._read(k) for k in keys]

    def latest(self, kind: str, name: str) -> dict[str, Any] | None:
        seqs = self.sequence_numbers(kind, name)
        return self._read(record_key(kind, name, seqs[-1])) if seqs else None

    def get(self, kind: str, name: str, seq: int) -> dict[str, Any]:
        key = record_key(kind, name, seq)
        try:
            return self._read(key)
        except NotFoundError:
            seqs = self.sequence_numbers(kind, name)
            known = ", ".join(str(s) for s in seqs) if seqs else "none"
            raise NotFoundError(
                f"no {kind} record {name!r} version {seq}; existing versions: {known}",
                hint=f"list them with `modelopsx registry list {kind} {name}`",
            ) from None
