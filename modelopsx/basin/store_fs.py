"""The emulator's persistence: buckets (Basin object stores) and immutable objects in a directory.

Layout under root:
  buckets/<bucket>/bucket.json                          creation record
  buckets/<bucket>/objects/<kh[:2]>/<kh>.json           metadata sidecar (key, size, cid, type, user metadata)
  buckets/<bucket>/objects/<kh[:2]>/<kh>.<token>.data   the bytes
  uploads/<upload id>/                                  multipart uploads in progress
  tmp/                                                  bodies being received
  server.lock                                           held by the one process that serves this root
  quarantine/<time>-<pid>/                              files it could not account for (quarantine.py)
where kh = sha256(key). The sidecar is the commit point: it is created with os.link from a complete temp
file, which fails if the name exists, so concurrent writers of one key race safely (exactly one wins) and a
reader never sees a half-written object. A data file without a valid sidecar, a damaged sidecar and a sidecar
whose data is missing or of another size are moved to quarantine when the store opens, never deleted.

Only one process opens a root (root_lock.py), so the per-upload locks here serialise everything that touches
a multipart upload: Complete, Abort and a part being saved see each other whole, and exactly one wins.
"""

from __future__ import annotations

import bisect
import builtins
import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelopsx.basin.quarantine import Quarantine
from modelopsx.basin.root_lock import RootLock
from modelopsx.basin.s3xml import ListedObject, PendingUpload, S3Error, UploadedPart

log = logging.getLogger(__name__)

T2_ADDRESS = re.compile(r"t2[a-z2-7]{38,41}")
ALIAS_NAME = re.compile(r"0x[0-9a-fA-F]{40}\.[a-z0-9.-]{3,20}")
OWNER_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
PLAIN_ALIAS = re.compile(r"[a-z0-9.-]{3,20}")


def check_bucket_name(name: str) -> None:
    if T2_ADDRESS.fullmatch(name) or ALIAS_NAME.fullmatch(name):
        return
    raise S3Error(
        400,
        "InvalidBucketName",
        f"invalid store name {name!r}: use a t2 address (t2 + 38-41 base32 chars) or "
        "0x<40 hex owner>.<alias> with a 3-20 char alias of [a-z0-9.-] (a plain alias names the "
        "server owner's store)",
        resource=f"/{name}",
    )


@dataclass(frozen=True)
class ObjectMeta:
    key: str
    size: int
    cid: str
    content_type: str
    last_modified: float
    data_file: str
    metadata: dict[str, str] = field(default_factory=dict)


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


_DATA_NAME = re.compile(r"[0-9a-f]{64}\.[0-9a-f]+\.data")  # <key hash>.<token>.data, never a path


class DamagedRecord(ValueError):
    """An object's sidecar that cannot be trusted; the message says what is wrong with it."""

    def __init__(self, reason: str, key: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.key = key


def read_record(path: Path) -> ObjectMeta:
    """The object a sidecar describes, every field checked; DamagedRecord when it is torn or edited."""
    try:
        raw: Any = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        raise DamagedRecord("the record is not valid JSON (a torn write?)") from None
    if not isinstance(raw, dict):
        raise DamagedRecord("the record is not a JSON object")
    key = raw.get("key")
    if not isinstance(key, str):
        raise DamagedRecord("the record names no key")
    kh = path.name.removesuffix(".json")
    if _key_hash(key) != kh:
        raise DamagedRecord("the record is filed under another key's name", key)

    def has(name: str, kind: type | tuple[type, ...]) -> bool:
        value = raw.get(name)
        return isinstance(value, kind) and not isinstance(value, bool)

    if not has("size", int) or raw["size"] < 0:
        raise DamagedRecord("the record has no valid size", key)
    if not (has("cid", str) and has("content_type", str) and has("last_modified", (int, float))):
        raise DamagedRecord("the record lacks its cid, content type or time", key)
    data_file = raw.get("data_file")
    if not (isinstance(data_file, str) and data_file.startswith(kh) and _DATA_NAME.fullmatch(data_file)):
        raise DamagedRecord("the record names no data file of its own", key)
    metadata = raw.get("metadata", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise DamagedRecord("the record's user metadata is not a map of strings", key)
    return ObjectMeta(
        key, raw["size"], raw["cid"], raw["content_type"], float(raw["last_modified"]), data_file, metadata
    )


def _list_order(key: str) -> bytes:
    # Basin lists in no lexicographic order; a stable hash order makes that visible to clients (and tests).
    return hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()


class FsStore:
    """Thread-safe; one process owns a root. The in-memory key index serves listings only; reads and
    writes go to the files, so they stay correct even while the index is rebuilt."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.uploads = self.root / "uploads"
        self._buckets_dir = self.root / "buckets"
        self.root.mkdir(parents=True, exist_ok=True)
        # First of all: the cleaning below would destroy the work of another server on this root.
        self.root_lock = RootLock(self.root)
        self.root_lock.acquire()
        try:
            for d in (self.tmp, self.uploads, self._buckets_dir):
                d.mkdir(parents=True, exist_ok=True)
            for leftover in self.tmp.iterdir():  # bodies of requests cut off by a crash, never objects
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)
            self._lock = threading.Lock()
            self._upload_locks: dict[str, threading.RLock] = {}
            self._index: dict[str, list[str]] = {}  # bucket -> sorted keys
            self._info: dict[str, dict[str, ListedObject]] = {}
            self.quarantine = Quarantine(self.root)
            for bucket_dir in sorted(self._buckets_dir.iterdir()):
                if bucket_dir.is_dir():
                    self._load_bucket(bucket_dir.name)
        except BaseException:
            self.root_lock.release()
            raise

    def close(self) -> None:
        """Release the root for another process; this store must not be used afterwards."""
        self.root_lock.release()

    # ---- buckets ---------------------------------------------------------------------------------------
    def _bucket_dir(self, bucket: str) -> Path:
        return self._buckets_dir / bucket

    def _load_bucket(self, bucket: str) -> None:
        """Index a store's objects; quarantine every file that cannot be accounted for."""
        info: dict[str, ListedObject] = {}
        objects = self._bucket_dir(bucket) / "objects"
        referenced: set[str] = set()  # data file names (unique: each starts with its key's hash)
        damaged: list[tuple[Path, DamagedRecord]] = []
        for meta_path in objects.glob("*/*.json"):
            try:
                meta = read_record(meta_path)
                data = meta_path.parent / meta.data_file
                try:
                    on_disk = data.stat().st_size
                except FileNotFoundError:
                    raise DamagedRecord("its data file is missing", meta.key) from None
                if on_disk != meta.size:
                    raise DamagedRecord(
                        f"its data file holds {on_disk} bytes, the record says {meta.size}", meta.key
                    )
            except DamagedRecord as exc:
                damaged.append((meta_path, exc))
                continue
            referenced.add(meta.data_file)
            info[meta.key] = ListedObject(meta.key, meta.size, meta.cid, meta.last_modified)
        unaccounted: dict[Path, list[Path]] = {}  # sidecar path -> its key's data files no record names
        for data_path in objects.glob("*/*.data"):
            if data_path.name not in referenced:
                kh = data_path.name.split(".", 1)[0]
                unaccounted.setdefault(data_path.parent / f"{kh}.json", []).append(data_path)
        for meta_path, problem in damaged:
            files = [meta_path, *unaccounted.pop(meta_path, [])]
            self.quarantine.move(bucket, problem.key, f"damaged record: {problem.reason}", files)
        for data_paths in unaccounted.values():
            self.quarantine.move(
                bucket,
                None,
                "data file that no record names (a write cut off by a crash, or a record removed by hand)",
                data_paths,
            )
        self._info[bucket] = info
        self._index[bucket] = sorted(info)

    def create_bucket(self, bucket: str) -> None:
        check_bucket_name(bucket)
        try:
            self._bucket_dir(bucket).mkdir()
        except FileExistsError as exc:
            raise S3Error(
                409,
                "BucketAlreadyExists",
                f"store {bucket!r} already exists; pick another alias",
                f"/{bucket}",
            ) from exc
        (self._bucket_dir(bucket) / "objects").mkdir()
        record = {"name": bucket, "created": time.time()}
        (self._bucket_dir(bucket) / "bucket.json").write_text(json.dumps(record))
        with self._lock:
            self._info[bucket] = {}
            self._index[bucket] = []

    def bucket_exists(self, bucket: str) -> bool:
        return bucket in self._info

    def require_bucket(self, bucket: str) -> None:
        if bucket not in self._info:
            raise S3Error(404, "NoSuchBucket", f"store {bucket!r} does not exist", f"/{bucket}")

    def list_buckets(self) -> list[tuple[str, float]]:
        out = []
        for bucket in sorted(self._info):
            try:
                created = json.loads((self._bucket_dir(bucket) / "bucket.json").read_text())["created"]
            except (OSError, ValueError, KeyError):
                created = self._bucket_dir(bucket).stat().st_mtime
            out.append((bucket, float(created)))
        return out

    # ---- objects ---------------------------------------------------------------------------------------
    def _paths(self, bucket: str, key: str) -> tuple[Path, str]:
        kh = _key_hash(key)
        return self._bucket_dir(bucket) / "objects" / kh[:2], kh

    def new_temp(self) -> Path:
        return self.tmp / f"{secrets.token_hex(8)}.part"

    def exists(self, bucket: str, key: str) -> bool:
        d, kh = self._paths(bucket, key)
        return (d / f"{kh}.json").exists()

    def commit(
        self,
        bucket: str,
        key: str,
        body: Path,
        size: int,
        cid: str,
        content_type: str,
        metadata: dict[str, str],
    ) -> ObjectMeta:
        """Move a fully received body into place as a new object; 409 KeyExists if the key is taken."""
        self.require_bucket(bucket)
        d, kh = self._paths(bucket, key)
        d.mkdir(exist_ok=True)
        data_name = f"{kh}.{secrets.token_hex(6)}.data"
        meta = ObjectMeta(key, size, cid, content_type, time.time(), data_name, metadata)
        os.replace(body, d / data_name)
        meta_tmp = self.new_temp()
        try:
            meta_tmp.write_text(json.dumps(asdict(meta)))
            os.link(meta_tmp, d / f"{kh}.json")
        except FileExistsError as exc:
            (d / data_name).unlink(missing_ok=True)
            raise key_exists(bucket, key) from exc
        except BaseException:
            (d / data_name).unlink(missing_ok=True)
            raise
        finally:
            meta_tmp.unlink(missing_ok=True)
        with self._lock:
            keys = self._index[bucket]
            if key not in self._info[bucket]:
                bisect.insort(keys, key)
            self._info[bucket][key] = ListedObject(key, size, cid, meta.last_modified)
        return meta

    def head(self, bucket: str, key: str) -> ObjectMeta:
        self.require_bucket(bucket)
        d, kh = self._paths(bucket, key)
        try:
            meta = read_record(d / f"{kh}.json")
        except FileNotFoundError:
            raise no_such_key(bucket, key) from None
        except DamagedRecord as exc:
            # Damaged while serving: move the record aside so the key is free again (its data file, whose
            # name only the record knew, is quarantined as unaccounted when the store next opens).
            entry = self.quarantine.move(bucket, key, f"damaged record: {exc.reason}", [d / f"{kh}.json"])
            if entry.files:
                log.warning("quarantined the damaged record of %r in %s: %s", key, bucket, exc.reason)
            self._forget(bucket, key)
            raise no_such_key(bucket, key) from None
        if meta.key != key:  # sha256 collision: treat as absent rather than serve the wrong object
            raise no_such_key(bucket, key)
        return meta

    def data_path(self, bucket: str, meta: ObjectMeta) -> Path:
        d, _ = self._paths(bucket, meta.key)
        return d / meta.data_file

    def delete(self, bucket: str, key: str) -> None:
        meta = self.head(bucket, key)
        d, kh = self._paths(bucket, key)
        try:
            (d / f"{kh}.json").unlink()
        except FileNotFoundError:
            raise no_such_key(bucket, key) from None
        (d / meta.data_file).unlink(missing_ok=True)
        self._forget(bucket, key)

    def _forget(self, bucket: str, key: str) -> None:
        """Drop a key from the listing index."""
        with self._lock:
            if self._info[bucket].pop(key, None) is not None:
                keys = self._index[bucket]
                i = bisect.bisect_left(keys, key)
                if i < len(keys) and keys[i] == key:
                    del keys[i]

    def list(
        self, bucket: str, prefix: str, delimiter: str, cap: int
    ) -> tuple[list[ListedObject], list[str]]:
        """Objects and common prefixes under `prefix`, at most `cap` entries together, in hash order."""
        self.require_bucket(bucket)
        with self._lock:
            keys = self._index[bucket]
            lo = bisect.bisect_left(keys, prefix)
            hi = bisect.bisect_left(keys, prefix + "\U0010ffff") if prefix else len(keys)
            info = self._info[bucket]
            selected = [info[k] for k in keys[lo:hi]]
        objects: list[ListedObject] = []
        prefixes: set[str] = set()
        for obj in selected:
            if delimiter:
                idx = obj.key.find(delimiter, len(prefix))
                if idx >= 0:
                    prefixes.add(obj.key[: idx + len(delimiter)])
                    continue
            objects.append(obj)
        entries: list[tuple[bytes, ListedObject | str]] = [(_list_order(o.key), o) for o in objects]
        entries += [(_list_order(p), p) for p in prefixes]
        entries.sort(key=lambda e: e[0])
        entries = entries[:cap]
        return (
            [e for _, e in entries if isinstance(e, ListedObject)],
            [e for _, e in entries if isinstance(e, str)],
        )

    # ---- multipart uploads -----------------------------------------------------------------------------
    def create_upload(self, bucket: str, key: str, content_type: str, metadata: dict[str, str]) -> str:
        upload_id = secrets.token_hex(16)
        d = self.uploads / upload_id
        d.mkdir()
        (d / "upload.json").write_text(
            json.dumps(
                {
                    "bucket": bucket,
                    "key": key,
                    "content_type": content_type,
                    "metadata": metadata,
                    "initiated": time.time(),
                }
            )
        )
        return upload_id

    def _pending_uploads(self) -> builtins.list[tuple[Path, dict | None, float]]:
        """(folder, its record or None if unreadable, start time) of every upload in progress."""
        out: builtins.list[tuple[Path, dict | None, float]] = []
        for d in self.uploads.iterdir():
            try:
                info = json.loads((d / "upload.json").read_text())
                out.append((d, info, float(info.get("initiated", d.stat().st_mtime))))
            except (OSError, ValueError, TypeError, AttributeError):  # cut off before its record was written
                with contextlib.suppress(OSError):
                    out.append((d, None, d.stat().st_mtime))
        return out

    def list_uploads(self, bucket: str, prefix: str = "") -> builtins.list[PendingUpload]:
        """Multipart uploads in progress under `prefix`, oldest first, so a client can find and abort them."""
        self.require_bucket(bucket)
        found = [
            PendingUpload(info["key"], d.name, started)
            for d, info, started in self._pending_uploads()
            if info is not None
            and info.get("bucket") == bucket
            and str(info.get("key", "")).startswith(prefix)
        ]
        return sorted(found, key=lambda u: (u.initiated, u.key))

    def remove_abandoned_uploads(self, max_age_seconds: float, now: float | None = None) -> tuple[int, int]:
        """Delete uploads started more than `max_age_seconds` ago -> (uploads removed, bytes freed).

        A crash mid-upload leaves its parts behind and no client will ever complete it."""
        cutoff = (time.time() if now is None else now) - max_age_seconds
        removed = freed = 0
        for d, _, started in self._pending_uploads():
            if started > cutoff:
                continue
            freed += sum(f.stat().st_size for f in d.iterdir() if f.is_file())
            shutil.rmtree(d, ignore_errors=True)
            removed += 1
        return removed, freed

    @contextlib.contextmanager
    def upload_lock(self, upload_id: str) -> Iterator[None]:
        """Hold one upload still: Complete, Abort, saving a part and listing parts take turns on it."""
        with self._lock:
            lock = self._upload_locks.setdefault(upload_id, threading.RLock())
        with lock:
            yield

    def upload_info(self, bucket: str, key: str, upload_id: str) -> dict:
        if not re.fullmatch(r"[0-9a-f]{32}", upload_id):
            raise no_such_upload(upload_id)
        try:
            info = json.loads((self.uploads / upload_id / "upload.json").read_text())
        except (FileNotFoundError, NotADirectoryError):
            raise no_such_upload(upload_id) from None
        except ValueError:  # torn record: the upload cannot be completed; ListMultipartUploads skips it too
            raise no_such_upload(upload_id) from None
        if not isinstance(info, dict) or info.get("bucket") != bucket or info.get("key") != key:
            raise no_such_upload(upload_id)
        return dict(info)

    def part_path(self, upload_id: str, number: int) -> Path:
        return self.uploads / upload_id / f"part-{number:05d}"

    def save_part(self, upload_id: str, number: int, body: Path, md5_hex: str) -> None:
        """Store a received part (replacing an earlier one of that number); NoSuchUpload once it is gone."""
        path = self.part_path(upload_id, number)
        etag_file = path.with_suffix(".md5")
        with self.upload_lock(upload_id):
            if not (self.uploads / upload_id / "upload.json").is_file():
                raise no_such_upload(upload_id)
            # Without its ETag file a part counts as not uploaded, so a crash between these steps can never
            # pair the new bytes with the old ETag.
            etag_file.unlink(missing_ok=True)
            os.replace(body, path)
            etag_tmp = self.new_temp()
            etag_tmp.write_text(md5_hex)
            os.replace(etag_tmp, etag_file)

    def part_etag(self, upload_id: str, number: int) -> str | None:
        try:
            return self.part_path(upload_id, number).with_suffix(".md5").read_text()
        except FileNotFoundError:
            return None

    def list_parts(self, bucket: str, key: str, upload_id: str) -> builtins.list[UploadedPart]:
        """The parts of an upload in progress, by number (what a resuming client still has to send)."""
        with self.upload_lock(upload_id):
            self.upload_info(bucket, key, upload_id)
            parts = []
            for path in sorted((self.uploads / upload_id).glob("part-[0-9][0-9][0-9][0-9][0-9]")):
                etag = self.part_etag(upload_id, int(path.name[5:]))
                if etag is None:
                    continue
                stat = path.stat()
                parts.append(UploadedPart(int(path.name[5:]), etag, stat.st_size, stat.st_mtime))
            return parts

    def remove_upload(self, upload_id: str) -> None:
        """Remove an upload at once (a rename out of uploads/), then its files."""
        doomed = self.tmp / f"{upload_id}.removed-{secrets.token_hex(4)}"
        try:
            os.rename(self.uploads / upload_id, doomed)
        except FileNotFoundError:
            return
        finally:
            with self._lock:
                self._upload_locks.pop(upload_id, None)
        shutil.rmtree(doomed, ignore_errors=True)


def key_exists(bucket: str, key: str) -> S3Error:
    return S3Error(
        409, "KeyExists", f"key exists: {key!r} is already stored; objects are immutable", f"/{bucket}/{key}"
    )


def no_such_key(bucket: str, key: str) -> S3Error:
    return S3Error(404, "NoSuchKey", f"no object with key {key!r}", f"/{bucket}/{key}")


def no_such_upload(upload_id: str) -> S3Error:
    return S3Error(404, "NoSuchUpload", f"no multipart upload {upload_id!r} (completed or aborted?)")
