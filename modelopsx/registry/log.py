"""The registry: an append-only log of JSON records on an object store.

Keys are ``registry/<kind>/<name>/<seq:08d>.json``. Appending is a put-if-absent of ``head + 1``; when
another writer won that sequence number the append looks for the head again and retries (bounded, with
jittered backoff), so N concurrent writers never lose or overwrite a record and the sequence stays gap-free.
Records are never rewritten. The head is found in a few small listings whatever the log's length (see
head.py), so appends and champion lookups cost the same at 10 or 10,000 versions; reads of a page fetch
only that page. A record deleted by hand leaves a gap that reads and appends report and step over.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from modelopsx.errors import KeyExistsError, NotFoundError, StorageError, UserError
from modelopsx.registry.head import BLOCK_SIZE, Head, LogIndex, block_of
from modelopsx.retry import RetryPolicy
from modelopsx.storage.base import ObjectStore

KINDS = ("datasets", "models", "evaluations", "promotions")
ROOT = "registry"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class RegistryGapWarning(UserWarning):
    """A log misses records below its head (deleted by hand); reads and appends step over the gap."""


@dataclass
class Page:
    """A run of consecutive versions of one log: the records that exist, and the numbers that do not."""

    head: int  # the log's newest version (0: empty)
    first: int  # the first version the page covers (first > last: nothing to show)
    last: int
    records: list[dict[str, Any]] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)


def describe_versions(seqs: list[int]) -> str:
    """'1, 2, 5-9' for ascending numbers: runs of three or more collapse into a range."""
    runs: list[list[int]] = []
    for s in seqs:
        if runs and s == runs[-1][1] + 1:
            runs[-1][1] = s
        else:
            runs.append([s, s])
    parts = []
    for low, high in runs:
        parts += [f"{low}-{high}"] if high - low >= 2 else [str(v) for v in range(low, high + 1)]
    return ", ".join(parts)


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
        # The newest seq seen per log: where the next head search starts (records never disappear on their
        # own, so that block still holds records).
        self._heads: dict[tuple[str, str], int] = {}
        self._warned: set[tuple[str, str, tuple[int, ...]]] = set()
        self._lock = threading.Lock()
        self.stats = {"appends": 0, "conflicts": 0}

    @property
    def url(self) -> str:
        return getattr(self.store, "url", "")

    def _prefix(self, kind: str, name: str) -> str:
        return f"{ROOT}/{check_kind(kind)}/{check_name(name)}/"

    def _index(self, kind: str, name: str) -> LogIndex:
        return LogIndex(self.store, self._prefix(kind, name))

    def head(self, kind: str, name: str) -> Head:
        """The newest record's number (0: empty log), found in a few small listings (see head.py)."""
        known = self._heads.get((kind, name))
        head = self._index(kind, name).find_head(None if known is None else block_of(known))
        self._note_head(kind, name, head)
        return head

    def _note_head(self, kind: str, name: str, head: Head) -> None:
        with self._lock:
            self._heads[(kind, name)] = head.seq
        missing = tuple(head.missing)
        if missing and (kind, name, missing) not in self._warned:
            # a listing racing other writers' creates may skip a key (a folder read mid-update): confirm
            missing = tuple(s for s in missing if not self.store.exists(record_key(kind, name, s)))
        if missing and (kind, name, missing) not in self._warned:
            self._warned.add((kind, name, missing))
            warnings.warn(
                f"{self._prefix(kind, name)} misses version(s) {describe_versions(list(missing))} below its "
                f"newest version {head.seq} (deleted by hand?); the log continues after {head.seq}",
                RegistryGapWarning,
                stacklevel=3,
            )

    def sequence_numbers(self, kind: str, name: str) -> list[int]:
        """Every stored sequence number of this log, ascending (the whole history: O(n) listing)."""
        return self._index(kind, name).all_seqs()

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
        was lost is recognised on retry by its record_id, so a record is never written twice. A writer that
        appended here before tries the number after its last one first, with no listing at all.
        """
        key_prefix = self._prefix(kind, name)
        index = self._index(kind, name)
        body = dict(record)
        body.setdefault("created_at", datetime.now(UTC).isoformat())
        record_id = str(body.setdefault("record_id", uuid.uuid4().hex))
        rng = random.Random()
        backoff = RetryPolicy(self.max_attempts, base_s=self.backoff_s, cap_s=self.max_backoff_s)
        known = self._heads.get((kind, name))
        stale_hints: int | None = None  # a block the hints did not name yet: the writer names it
        for attempt in range(self.max_attempts):  # every turn that does not return lost a race
            if known is None:
                head = index.find_head(None)
                self._note_head(kind, name, head)
                known = head.seq
                if head.block > head.hinted_block:
                    stale_hints = head.block
            seq = known + 1
            stored = {**body, "kind": kind, "name": name, "seq": seq, **{f: seq for f in seq_fields}}
            data = (json.dumps(stored, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")
            key = f"{key_prefix}{seq:08d}.json"
            try:
                self.store.put_if_absent(key, data, metadata={"content-type": "application/json"})
            except KeyExistsError:
                if self._read(key).get("record_id") == record_id:  # our own earlier put landed
                    return self._appended(index, key, stored, stale_hints)
                with self._lock:
                    self.stats["conflicts"] += 1
                time.sleep(backoff.delay(attempt, rng))
                head = index.find_head(block_of(seq))  # seq exists: search forward from its block
                self._note_head(kind, name, head)
                known = head.seq
                continue
            return self._appended(index, key, stored, stale_hints)
        raise AppendConflictError(
            f"could not append to {key_prefix} in {self.max_attempts} attempts: other writers kept winning",
            hint="retry the command; if it persists, fewer writers should append to the same name at once",
        )

    def _appended(self, index: LogIndex, key: str, stored: dict[str, Any], stale_hints: int | None) -> int:
        seq = int(stored["seq"])
        log = (str(stored["kind"]), str(stored["name"]))
        with self._lock:
            self.stats["appends"] += 1
            self._cache[key] = stored
            self._heads[log] = max(seq, self._heads.get(log, 0))
        if seq % BLOCK_SIZE == 0 or stale_hints is not None:  # a new block, or hints that lag behind
            index.write_hints(block_of(seq))
        return seq

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

    def _read_many(self, keys: list[str]) -> list[dict[str, Any]]:
        if len(keys) > 8:
            with ThreadPoolExecutor(max_workers=8) as pool:
                return list(pool.map(self._read, keys))
        return [self._read(k) for k in keys]

    def records(self, kind: str, name: str) -> list[dict[str, Any]]:
        """Every record of this log, sorted by seq (each carries "seq"). Reads the whole history: prefer
        `page` or `iter_records` where the newest few are enough."""
        return self._read_many([record_key(kind, name, s) for s in self.sequence_numbers(kind, name)])

    def page(self, kind: str, name: str, since: int | None = None, limit: int = 20) -> Page:
        """Up to `limit` consecutive versions: the newest ones, or with `since` the first ones after it.

        Lists only the blocks the page covers (plus the head search) and reads only its records."""
        if limit < 1:
            raise RegistryError(f"--limit must be at least 1, not {limit}")
        if since is not None and since < 0:
            raise RegistryError(f"--since must be a version number (0 or more), not {since}")
        head = self.head(kind, name).seq
        first = since + 1 if since is not None else max(1, head - limit + 1)
        last = min(head, first + limit - 1)
        page = Page(head=head, first=first, last=last)
        if first > last:
            return page
        index = self._index(kind, name)
        present = [
            s
            for _, seqs in index.iter_blocks(block_of(first), block_of(last))
            for s in seqs
            if first <= s <= last
        ]
        page.records = self._read_many([record_key(kind, name, s) for s in present])
        page.missing = sorted(set(range(first, last + 1)) - set(present))
        return page

    def iter_records(self, kind: str, name: str, since: int | None = None) -> Iterator[dict[str, Any]]:
        """Records after `since` (all with None), oldest first, one block at a time: memory stays flat."""
        head = self.head(kind, name).seq
        first = (since or 0) + 1
        if first > head:
            return
        index = self._index(kind, name)
        for _, seqs in index.iter_blocks(block_of(first), block_of(head)):
            wanted = [s for s in seqs if first <= s <= head]
            yield from self._read_many([record_key(kind, name, s) for s in wanted])

    def iter_newest(self, kind: str, name: str) -> Iterator[dict[str, Any]]:
        """Records newest first, one block at a time: a search that usually stops early reads little."""
        head = self.head(kind, name)
        index = self._index(kind, name)
        for block in range(head.block, -1, -1):
            seqs = head.block_seqs if block == head.block else index.block_seqs(block)
            keys = [record_key(kind, name, s) for s in reversed(seqs)]
            yield from self._read_many(keys)

    def latest(self, kind: str, name: str) -> dict[str, Any] | None:
        head = self.head(kind, name)
        return self._read(record_key(kind, name, head.seq)) if head.seq else None

    def get(self, kind: str, name: str, seq: int) -> dict[str, Any]:
        key = record_key(kind, name, seq)
        try:
            return self._read(key)
        except NotFoundError:
            head = self.head(kind, name).seq
            if head == 0:
                known = "none"
            elif head <= 1000:
                known = describe_versions(self.sequence_numbers(kind, name))
            else:  # the whole list would be a wall of numbers: say where the log ends
                known = f"up to {head}"
            raise NotFoundError(
                f"no {kind} record {name!r} version {seq}; existing versions: {known}",
                hint=f"list them with `modelopsx registry list {kind} {name}`",
            ) from None
