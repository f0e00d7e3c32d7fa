"""Verified, incremental, parallel, resumable mirroring of one object store (or prefix) into another.

How it decides and stays safe:
- Plan: list both sides. A destination object whose CID (from the listing, a fresh manifest entry of the
  same size, or a HEAD) equals the source's is skipped, so a no-op re-sync reads no destination bytes.
- Send: workers (threads) get, hash, put; transient failures (5xx, dropped or truncated transfers, timeouts,
  CID mismatches) are retried with exponential backoff and full jitter.
- Verify: every put checks the digest that the destination reports against the bytes sent.
- Resume: the destination is the journal. Each object lands atomically, so a rerun after a crash finds what
  already arrived (by CID) and sends only the rest.
- Complete: a manifest listing every key with its CID and size is written last, only when nothing failed.
- Immutable destinations (Basin): nothing is overwritten or deleted; a key holding other content is a failure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelopsx.errors import IntegrityError, KeyExistsError, ReadOnlyStoreError, StorageError
from modelopsx.storage.base import ObjectInfo, ObjectStore
from modelopsx.storage.cid import cid_of_bytes, cid_of_file
from modelopsx.storage.manifest import Manifest, is_sync_key, read_latest_manifest, write_manifest
from modelopsx.storage.retry import (
    EndpointUnreachableError,
    RetryCounter,
    RetryPolicy,
    call_with_retry,
    is_transient,
)
from modelopsx.storage.stores import open_store


@dataclass
class PlanItem:
    key: str
    size: int
    src_cid: str | None
    action: str  # "send", "skip", "check" (destination holds the key, CID unknown), "conflict", "delete"
    dst_cid: str | None = None


@dataclass
class SyncSummary:
    source: str = ""
    destination: str = ""
    total: int = 0
    files_sent: int = 0
    bytes_sent: int = 0
    skipped: int = 0
    failed: int = 0
    retries: int = 0
    verified: int = 0
    deleted: int = 0
    dry_run: bool = False
    elapsed_s: float = 0.0
    manifest_key: str | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)
    plan: list[PlanItem] = field(default_factory=list)

    def describe(self) -> str:
        if self.dry_run:
            send = [p for p in self.plan if p.action in ("send", "check", "conflict")]
            deletions = sum(1 for p in self.plan if p.action == "delete")
            return (
                f"dry run {self.source} -> {self.destination}: would send up to {len(send)} "
                f"of {self.total} files ({_size(sum(p.size for p in send))}), "
                f"skip {self.skipped} unchanged"
                + (f", delete {deletions}" if deletions else "")
                + "; nothing was sent"
            )
        text = (
            f"synced {self.source} -> {self.destination}: {self.files_sent} files sent "
            f"({_size(self.bytes_sent)}), {self.skipped} skipped (unchanged), {self.verified} verified, "
            f"{self.retries} retries, {self.failed} failed"
        )
        if self.deleted:
            text += f", {self.deleted} deleted"
        text += f" in {self.elapsed_s:.1f}s"
        if self.manifest_key:
            text += f"; manifest {self.manifest_key}"
        return text

    def to_json(self) -> dict[str, Any]:
        fields = (
            "source",
            "destination",
            "total",
            "files_sent",
            "bytes_sent",
            "skipped",
            "failed",
            "retries",
            "verified",
            "deleted",
            "dry_run",
            "elapsed_s",
            "manifest_key",
        )
        return {k: getattr(self, k) for k in fields} | {"failures": self.failures}


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


def _retry_listing(exc: BaseException) -> bool:
    return is_transient(exc) and not isinstance(exc, EndpointUnreachableError)


def _store_retries(store: ObjectStore) -> int:
    counter = getattr(store, "retries", None)
    return counter.value if isinstance(counter, RetryCounter) else 0


class _Engine:
    def __init__(
        self, src: ObjectStore, dst: ObjectStore, workers: int, quiet: bool, policy: RetryPolicy
    ) -> None:
        self.src, self.dst = src, dst
        self.workers = max(1, workers)
        self.quiet = quiet
        self.policy = policy
        self.retries = RetryCounter()
        self.lock = threading.Lock()
        self.read_only: str | None = None  # set once the destination refused a write as read-only
        self.summary = SyncSummary(source=src.url, destination=dst.url)
        self.cids: dict[str, tuple[str, int]] = {}  # what the manifest will list
        self.immutable = bool(getattr(dst, "immutable", False))
        self.bar: Any = None
        self.manifest: Manifest | None = None

    # -- planning --------------------------------------------------------------------------------------
    def list_side(self, store: ObjectStore) -> list[ObjectInfo]:
        # Planning fails fast when nothing answers: that is a setting to fix, not a hiccup to wait out.
        return call_with_retry(
            lambda: [o for o in store.iter_all() if not is_sync_key(o.key)],
            self.policy,
            self.retries,
            retry_if=_retry_listing,
        )

    def plan(self, include: Callable[[str], bool] | None, delete: bool) -> list[PlanItem]:
        # The three reads are independent; side by side, a no-op re-sync costs about its slowest listing.
        with ThreadPoolExecutor(3) as pool:
            src_listed = pool.submit(self.list_side, self.src)
            dst_listed = pool.submit(self.list_side, self.dst)
            manifest = pool.submit(
                call_with_retry, lambda: read_latest_manifest(self.dst), self.policy, self.retries
            )
            src_objects = [o for o in src_listed.result() if include is None or include(o.key)]
            dst_objects = {o.key: o for o in dst_listed.result()}
            self.manifest = manifest.result()
        recorded = self.manifest.objects if self.manifest else {}
        src_cids = self._source_cids(src_objects)
        items = []
        for obj in src_objects:
            src_cid = src_cids.get(obj.key)
            there = dst_objects.get(obj.key)
            if there is None:
                items.append(PlanItem(obj.key, obj.size, src_cid, "send"))
                continue
            dst_cid = there.cid
            if dst_cid is None and obj.key in recorded and recorded[obj.key][1] == there.size:
                dst_cid = recorded[obj.key][0]
            if dst_cid is not None and src_cid is not None and there.size == obj.size:
                action = "skip" if dst_cid == src_cid else ("conflict" if self.immutable else "send")
            elif there.size != obj.size and dst_cid is not None:
                action = "conflict" if self.immutable else "send"
            else:
                action = "check"
            items.append(PlanItem(obj.key, obj.size, src_cid, action, dst_cid))
        if delete:
            wanted = {o.key for o in src_objects}
            items += [
                PlanItem(k, o.size, None, "delete", o.cid)
                for k, o in sorted(dst_objects.items())
                if k not in wanted
            ]
        return items

    def _source_cids(self, objects: list[ObjectInfo]) -> dict[str, str]:
        """CIDs from the source listing; a local folder's files without a recorded CID are hashed here
        (or taken from the stat-keyed hash cache when the file is unchanged)."""
        cids = {o.key: o.cid for o in objects if o.cid}
        root: Path | None = getattr(self.src, "root", None)
        missing = [o.key for o in objects if not o.cid]
        if root is not None and missing:
            from modelopsx.storage.hashcache import HashCache

            cache = HashCache()
            fresh = []
            for key in missing:  # BLAKE3 outruns the disk; threads here only add lock traffic
                path = root / key
                try:
                    stat = path.stat()
                except OSError:
                    continue  # gone since the listing: its transfer reports it
                cid = cache.get(path, stat)
                if cid is None:
                    cid = cid_of_file(path)
                    fresh.append((path, stat, cid))
                cids[key] = cid
            cache.put_many(fresh)
            cache.close()
        return cids

    # -- transfer --------------------------------------------------------------------------------------
    def transfer(self, item: PlanItem) -> None:
        if self.read_only is not None:  # every further write would be refused the same way
            with self.lock:
                self.summary.failed += 1
                self.summary.failures.append((item.key, f"not sent: {self.read_only}"))
            return
        try:
            outcome, sent, cid = call_with_retry(lambda: self._transfer_once(item), self.policy, self.retries)
        except Exception as exc:  # one object's failure must not stop the others
            message = str(exc) if isinstance(exc, StorageError) else f"{type(exc).__name__}: {exc}"
            if isinstance(exc, ReadOnlyStoreError):
                self.read_only = "the destination is read-only"
            with self.lock:
                self.summary.failed += 1
                self.summary.failures.append((item.key, message))
            return
        with self.lock:
            self.cids[item.key] = (cid, item.size if outcome == "skipped" else sent)
            if outcome == "skipped":
                self.summary.skipped += 1
            else:
                self.summary.files_sent += 1
                self.summary.bytes_sent += sent
                self.summary.verified += 1
        if self.bar is not None:
            self.bar.update(item.size)

    def _transfer_once(self, item: PlanItem) -> tuple[str, int, str]:
        src_cid = item.src_cid
        if item.action == "check":  # destination holds the key; compare CIDs without reading bytes
            there = self.dst.head(item.key)
            if src_cid is None:
                src_info = self.src.head(item.key)
                src_cid = src_info.cid if src_info else None
            if there is not None and there.cid and there.cid == src_cid:
                return "skipped", 0, src_cid
            item.dst_cid = there.cid if there else None
        data = self.src.get(item.key)  # verified against the source's own CID where it records one
        cid = cid_of_bytes(data)
        if item.src_cid is not None and cid != item.src_cid:
            raise IntegrityError(
                f"{item.key!r} read from {self.src.url} does not match its CID (changed during the sync?)"
            )
        if item.dst_cid == cid:
            return "skipped", 0, cid
        if self.immutable and item.dst_cid is not None:
            raise KeyExistsError(
                f"{item.key!r} already exists in {self.dst.url} with other content "
                f"({item.dst_cid}); Basin objects are immutable",
                hint="write the new version under a new key or prefix",
            )
        try:
            self.dst.put(item.key, data)  # raises IntegrityError if the stored digest does not match
        except KeyExistsError:
            # An earlier attempt may have landed before its answer was lost: accept it only if identical.
            there = self.dst.head(item.key)
            if there is None or there.cid != cid:
                raise
        return "sent", len(data), cid

    def remove(self, item: PlanItem) -> None:
        try:
            call_with_retry(lambda: self.dst.delete(item.key), self.policy, self.retries)
        except StorageError as exc:
            with self.lock:
                self.summary.failed += 1
                self.summary.failures.append((item.key, str(exc)))
            return
        with self.lock:
            self.summary.deleted += 1


def sync(
    src: ObjectStore | str,
    dst: ObjectStore | str,
    workers: int = 8,
    dry_run: bool = False,
    delete: bool = False,
    quiet: bool = True,
    *,
    include: Callable[[str], bool] | None = None,
    last: Callable[[str], bool] | None = None,
    policy: RetryPolicy | None = None,
) -> SyncSummary:
    """Mirror `src` into `dst`. `include` filters source keys; keys matching `last` are sent only after
    every other object arrived (DVC's `.dir` manifests). Returns the summary; failures are listed in it."""
    started = time.perf_counter()
    src_store, dst_store = open_store(src), open_store(dst)
    if delete and getattr(dst_store, "immutable", False):
        raise StorageError(
            f"--delete refused: {dst_store.url} is a Basin store, whose objects are immutable",
            hint="sync without --delete, or mirror into a new prefix",
        )
    engine = _Engine(src_store, dst_store, workers, quiet, policy or RetryPolicy())
    base_retries = _store_retries(src_store) + _store_retries(dst_store)
    items = engine.plan(include, delete)
    summary = engine.summary
    summary.plan, summary.dry_run = items, dry_run
    copies = [i for i in items if i.action != "delete"]
    summary.total = len(copies)
    for item in copies:
        if item.action == "skip":
            engine.cids[item.key] = (item.src_cid or "", item.size)
    summary.skipped = sum(1 for i in copies if i.action == "skip")
    if dry_run:
        summary.elapsed_s = time.perf_counter() - started
        return summary

    todo = [i for i in copies if i.action != "skip"]
    waves = [[i for i in todo if not (last and last(i.key))], [i for i in todo if last and last(i.key)]]
    if todo and not quiet:
        from tqdm import tqdm

        engine.bar = tqdm(
            total=sum(i.size for i in todo), unit="B", unit_scale=True, desc="sync", leave=False
        )
    try:
        with ThreadPoolExecutor(engine.workers) as pool:
            for wave in waves:
                if summary.failed:
                    summary.failed += len(wave)
                    summary.failures += [(i.key, "not sent: an earlier object failed") for i in wave]
                    continue
                list(pool.map(engine.transfer, wave))
            if not summary.failed:
                list(pool.map(engine.remove, [i for i in items if i.action == "delete"]))
    finally:
        if engine.bar is not None:
            engine.bar.close()
    store_retries = _store_retries(src_store) + _store_retries(dst_store) - base_retries
    summary.retries = engine.retries.value + store_retries
    if not summary.failed:
        previous = engine.manifest
        if previous is None or previous.objects != engine.cids:
            summary.manifest_key = write_manifest(dst_store, engine.cids, src_store.url)
    summary.elapsed_s = time.perf_counter() - started
    return summary
