"""Check that a version's DVC objects are in the store before the mirror points at them, and read one file
of a stored directory version, using dvc_data's own `.dir` manifest code."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

from modelopsx.errors import NotFoundError
from modelopsx.storage.base import ObjectStore
from modelopsx.storage.dvc_remote import object_key


class ObjectChecker:
    """Answers "which objects of this `.dir` version are missing?" once per hash per sync."""

    def __init__(self, store: ObjectStore, workers: int = 16) -> None:
        self.store = store
        self.workers = workers
        self._checked: dict[str, list[str]] = {}
        self._trees: dict[str, list[tuple[str, str]]] = {}

    def entries(self, dir_hash: str) -> list[tuple[str, str]]:
        """(relative path, md5) of every file of the version; NotFoundError if its `.dir` is absent."""
        if dir_hash not in self._trees:
            from dvc_data.hashfile.tree import Tree

            data = self.store.get(object_key(dir_hash))
            if hashlib.md5(data, usedforsecurity=False).hexdigest() != dir_hash.removesuffix(".dir"):
                raise NotFoundError(f"{object_key(dir_hash)} in {self.store.url} does not match its md5")
            try:
                listing = json.loads(data)
                tree = Tree.from_list(listing if isinstance(listing, list) else [])
            except (ValueError, KeyError, TypeError) as exc:
                raise NotFoundError(
                    f"{object_key(dir_hash)} in {self.store.url} is not a DVC .dir manifest ({exc})"
                ) from None
            self._trees[dir_hash] = [
                ("/".join(key), str(hi.value)) for key, _, hi in tree if hi is not None and hi.value
            ]
        return self._trees[dir_hash]

    def missing(self, dir_hash: str) -> list[str]:
        """Keys of this version's objects that the store lacks (the `.dir` itself included)."""
        if not dir_hash.endswith(".dir"):
            return [f"{dir_hash or '(no hash)'} (not a DVC directory hash)"]
        if dir_hash not in self._checked:
            try:
                oids = sorted({md5 for _, md5 in self.entries(dir_hash)})
            except NotFoundError:
                self._checked[dir_hash] = [object_key(dir_hash)]
                return self._checked[dir_hash]
            keys = [object_key(oid) for oid in oids]
            with ThreadPoolExecutor(self.workers) as pool:
                present = list(pool.map(self.store.exists, keys))
            self._checked[dir_hash] = [key for key, ok in zip(keys, present, strict=True) if not ok]
        return self._checked[dir_hash]

    def read_file(self, dir_hash: str, relpath: str) -> bytes | None:
        """The bytes of `relpath` in that version, or None if the version or the file is not there."""
        try:
            md5 = dict(self.entries(dir_hash)).get(relpath)
            return None if md5 is None else self.store.get(object_key(md5))
        except NotFoundError:
            return None
