"""The local store: atomic writes, exclusive create, CID sidecars that notice bit rot but not user edits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelopsx.errors import IntegrityError, KeyExistsError, StorageError
from modelopsx.storage.cid import cid_of_bytes
from modelopsx.storage.local import META_DIR, LocalStore


def test_sidecars_hold_cid_and_metadata_and_stay_out_of_listings(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("a/b.txt", b"hello", {"owner": "me"})
    head = store.head("a/b.txt")
    assert head is not None and head.cid == cid_of_bytes(b"hello") and head.metadata == {"owner": "me"}
    assert (tmp_path / META_DIR / "a/b.txt.json").exists()
    assert [o.key for o in store.iter_all()] == ["a/b.txt"]
    with pytest.raises(StorageError, match="reserved"):
        store.put(f"{META_DIR}/x", b"no")


def test_a_user_edit_drops_the_recorded_cid_instead_of_failing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("notes.txt", b"v1")
    path = tmp_path / "notes.txt"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns - 10_000_000_000))
    path.write_bytes(b"v2 edited")  # new size and mtime: an edit, not corruption
    assert store.get("notes.txt") == b"v2 edited"
    head = store.head("notes.txt")
    assert head is not None and head.cid is None


def test_bit_rot_under_a_recorded_cid_is_an_error(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("w.bin", b"\x00" * 64)
    path = tmp_path / "w.bin"
    stat = path.stat()
    path.write_bytes(b"\x00" * 63 + b"\x01")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(IntegrityError, match="does not match its CID"):
        store.get("w.bin")
    assert store.get("w.bin", (0, 3)) == b"\x00" * 4  # ranges are not checked against whole-object CIDs


def test_put_if_absent_leaves_no_temp_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_if_absent("k", b"1")
    with pytest.raises(KeyExistsError):
        store.put_if_absent("k", b"2")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([META_DIR, "k"])
    assert store.get("k") == b"1"


def test_put_replaces_atomically(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("k", b"old")
    store.put("k", b"new")
    assert store.get("k") == b"new" and store.head("k").cid == cid_of_bytes(b"new")  # type: ignore[union-attr]


def test_key_clashing_with_a_folder_is_a_storage_error(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("a/b", b"x")
    with pytest.raises(StorageError):
        store.put("a", b"y")
    with pytest.raises(StorageError):
        store.put("a/b/c", b"z")
