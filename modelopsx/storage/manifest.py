"""Sync manifests: written last by a sync, so a reader that finds one knows the copy it lists is complete.

Manifests live under `.modelopsx-sync/` in the destination, one per sync that changed something, named by UTC
time so that the newest sorts last (`manifest-20260101T120000123456Z.json`). A new name for each one means
they work on immutable stores (Basin) too. A sync that changes nothing writes none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from modelopsx.errors import KeyExistsError, StorageError
from modelopsx.storage.base import ObjectStore

SYNC_DIR = ".modelopsx-sync"
FORMAT = "modelopsx-sync-manifest/1"


def is_sync_key(key: str) -> bool:
    return key == SYNC_DIR or key.startswith(SYNC_DIR + "/")


@dataclass
class Manifest:
    objects: dict[str, tuple[str, int]]  # key -> (cid, size)
    source: str = ""
    created: str = ""
    key: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "complete": True,
            "source": self.source,
            "created": self.created,
            "files": len(self.objects),
            "bytes": sum(size for _, size in self.objects.values()),
            "objects": {k: {"cid": cid, "size": size} for k, (cid, size) in sorted(self.objects.items())},
        }


def read_latest_manifest(store: ObjectStore) -> Manifest | None:
    keys = sorted(
        info.key
        for info in store.iter_all(SYNC_DIR + "/")
        if info.key.startswith(f"{SYNC_DIR}/manifest-") and info.key.endswith(".json")
    )
    for key in reversed(keys):
        try:
            doc = json.loads(store.get(key))
        except (StorageError, ValueError):
            continue  # an unreadable manifest only costs a fuller comparison
        if doc.get("format") != FORMAT or not doc.get("complete"):
            continue
        objects = {k: (str(v["cid"]), int(v["size"])) for k, v in doc.get("objects", {}).items()}
        return Manifest(
            objects=objects, source=str(doc.get("source", "")), created=str(doc.get("created", "")), key=key
        )
    return None


def write_manifest(store: ObjectStore, objects: dict[str, tuple[str, int]], source: str) -> str:
    """Write a new manifest (put-if-absent under a fresh name) and return its key."""
    for _ in range(5):
        now = datetime.now(UTC)
        manifest = Manifest(objects=objects, source=source, created=now.isoformat())
        key = f"{SYNC_DIR}/manifest-{now.strftime('%Y%m%dT%H%M%S%fZ')}.json"
        body = json.dumps(manifest.to_json(), indent=1, sort_keys=True).encode()
        try:
            store.put_if_absent(key, body, {"content-type": "application/json"})
            return key
        except KeyExistsError:
            continue  # two syncs in the same microsecond: take the next tick
    raise StorageError(f"could not write a sync manifest in {store.url}")
