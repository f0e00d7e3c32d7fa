"""A directory as an object store: atomic writes, exclusive create for put-if-absent, CIDs in sidecars.

Each object written through the store gets a sidecar `.modelopsx-meta/<key>.json` holding its CID, size,
mtime and user metadata. Reads verify against it while the file's size and mtime still match what was
written; a file changed outside the store (a user edit) simply has no recorded CID any more.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from modelopsx.errors import KeyExistsError, NotFoundError, StorageError
from modelopsx.storage.base import Listing, ObjectInfo, ObjectStore, check_key
from modelopsx.storage.cid import cid_of_bytes, verify_cid

META_DIR = ".modelopsx-meta"
TMP_PREFIX = ".modelopsx-tmp-"


def group_by_delimiter(infos: list[ObjectInfo], prefix: str, delimiter: str | None) -> Listing:
    """S3-style grouping: keys with `delimiter` after `prefix` collapse into common prefixes."""
    if not delimiter:
        return Listing(objects=infos, prefixes=[])
    objects, prefixes = [], set()
    for info in infos:
        rest = info.key[len(prefix) :]
        cut = rest.find(delimiter)
        if cut < 0:
            objects.append(info)
        else:
            prefixes.add(prefix + rest[: cut + len(delimiter)])
    return Listing(objects=objects, prefixes=sorted(prefixes))


class LocalStore(ObjectStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.url = f"file://{self.root}"

    # -- paths -----------------------------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        check_key(key)
        if key.split("/", 1)[0] == META_DIR or key.rsplit("/", 1)[-1].startswith(TMP_PREFIX):
            raise StorageError(f"invalid object key {key!r}: reserved name", hint=f"avoid {META_DIR}/ keys")
        return self.root / key

    def _meta_path(self, key: str) -> Path:
        return self.root / META_DIR / f"{key}.json"

    def _read_meta(self, key: str, stat: os.stat_result) -> dict | None:
        """The sidecar, if it still describes the file on disk (same size and mtime)."""
        try:
            meta = json.loads(self._meta_path(key).read_text())
        except (OSError, ValueError):
            return None
        if meta.get("size") != stat.st_size or meta.get("mtime_ns") != stat.st_mtime_ns:
            return None
        return meta

    def _write_tmp(self, path: Path, data: bytes) -> str:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise StorageError(
                f"cannot create {path}: a parent is a file", hint="keys clash with an object"
            ) from exc
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TMP_PREFIX)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return tmp

    def _finish(self, key: str, path: Path, cid: str, metadata: dict[str, str] | None) -> ObjectInfo:
        stat = path.stat()
        meta = {"cid": cid, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "metadata": metadata or {}}
        sidecar = self._meta_path(key)
        sidecar.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._write_tmp(sidecar, json.dumps(meta).encode())
        os.replace(tmp, sidecar)
        return ObjectInfo(key=key, size=stat.st_size, cid=cid, metadata=dict(metadata or {}))

    # -- interface -------------------------------------------------------------------------------------
    def put(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> ObjectInfo:
        path = self._path(key)
        cid = cid_of_bytes(data)
        tmp = self._write_tmp(path, data)
        try:
            os.replace(tmp, path)  # atomic: readers see the old or the new file, never a partial one
        except IsADirectoryError as exc:
            os.unlink(tmp)
            raise StorageError(f"cannot write {key!r}: a folder of that name exists") from exc
        return self._finish(key, path, cid, metadata)

    def put_if_absent(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> ObjectInfo:
        path = self._path(key)
        cid = cid_of_bytes(data)
        tmp = self._write_tmp(path, data)
        try:
            os.link(tmp, path)  # exclusive create: fails if the name exists, atomically
        except FileExistsError as exc:
            raise KeyExistsError(
                f"key {key!r} already exists in {self.url}",
                hint="stored objects are immutable; write a new key",
            ) from exc
        finally:
            os.unlink(tmp)
        return self._finish(key, path, cid, metadata)

    def get(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        path = self._path(key)
        try:
            with open(path, "rb") as fh:
                stat = os.fstat(fh.fileno())
                if byte_range is not None:
                    start, end = byte_range
                    fh.seek(start)
                    return fh.read(max(0, end - start + 1))
                data = fh.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise NotFoundError(f"no object {key!r} in {self.url}") from exc
        meta = self._read_meta(key, stat)
        if meta and meta.get("cid"):
            verify_cid(data, meta["cid"])
        return data

    def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            stat = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        meta = self._read_meta(key, stat) or {}
        return ObjectInfo(key=key, size=stat.st_size, cid=meta.get("cid"), metadata=meta.get("metadata", {}))

    def _walk(self, prefix: str) -> Iterator[ObjectInfo]:
        base = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        if not base.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(base):
            rel_dir = os.path.relpath(dirpath, self.root)
            rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
            if not rel_dir:
                dirnames[:] = [d for d in dirnames if d != META_DIR]
            for name in filenames:
                key = rel_dir + name
                if name.startswith(TMP_PREFIX) or not key.startswith(prefix):
                    continue
                full = os.path.join(dirpath, name)
                try:
                    stat = os.stat(full)
                except FileNotFoundError:
                    continue  # deleted while listing
                meta = self._read_meta(key, stat) or {}
                yield ObjectInfo(key=key, size=stat.st_size, cid=meta.get("cid"))

    def list(self, prefix: str = "", delimiter: str | None = None) -> Listing:
        return group_by_delimiter(list(self._walk(prefix)), prefix, delimiter)

    def iter_all(self, prefix: str = "") -> Iterator[ObjectInfo]:
        yield from sorted(self._walk(prefix), key=lambda info: info.key)

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise NotFoundError(f"no object {key!r} in {self.url}") from exc
        self._meta_path(key).unlink(missing_ok=True)
