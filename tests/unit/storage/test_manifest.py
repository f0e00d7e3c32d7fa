"""Sync manifests: newest wins, incomplete or foreign files are ignored."""

from __future__ import annotations

import json
from pathlib import Path

from modelopsx.storage.local import LocalStore
from modelopsx.storage.manifest import SYNC_DIR, is_sync_key, read_latest_manifest, write_manifest


def test_latest_manifest_wins_and_bad_ones_are_skipped(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    assert read_latest_manifest(store) is None
    first = write_manifest(store, {"a": ("bafkr4iaaa", 1)}, "file:///src")
    second = write_manifest(store, {"a": ("bafkr4iaaa", 1), "b": ("bafkr4ibbb", 2)}, "file:///src")
    assert first < second
    latest = read_latest_manifest(store)
    assert latest is not None and latest.key == second and set(latest.objects) == {"a", "b"}
    doc = json.loads(store.get(second))
    assert doc["complete"] and doc["files"] == 2 and doc["bytes"] == 3
    store.put(f"{SYNC_DIR}/manifest-99999999T999999999999Z.json", b"{not json")
    assert read_latest_manifest(store).key == second  # type: ignore[union-attr]


def test_sync_keys() -> None:
    assert is_sync_key(f"{SYNC_DIR}/manifest-1.json") and not is_sync_key("data/.modelopsx-syncx")
