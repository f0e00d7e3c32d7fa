"""The emulator's file store: names, put-if-absent commits, listing order and cap, crash debris."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from modelopsx.basin.s3xml import S3Error
from modelopsx.basin.store_fs import FsStore, check_bucket_name

STORE = "0x" + "12" * 20 + ".unit"


def _put(store: FsStore, key: str, data: bytes = b"x") -> None:
    body = store.new_temp()
    body.write_bytes(data)
    store.commit(STORE, key, body, len(data), "bafkr4i-test", "binary/octet-stream", {})


@pytest.fixture
def store(tmp_path: Path) -> FsStore:
    s = FsStore(tmp_path)
    s.create_bucket(STORE)
    return s


def test_bucket_names() -> None:
    check_bucket_name("t2" + "q" * 40)
    check_bucket_name(STORE)
    for bad in ("", "t2", "0x12.abc", STORE.upper(), STORE + "/x"):
        with pytest.raises(S3Error):
            check_bucket_name(bad)


def test_commit_is_put_if_absent_and_leaves_no_debris(store: FsStore) -> None:
    _put(store, "a", b"first")
    with pytest.raises(S3Error) as exc:
        _put(store, "a", b"second")
    assert exc.value.code == "KeyExists"
    meta = store.head(STORE, "a")
    assert store.data_path(STORE, meta).read_bytes() == b"first"
    assert not list(store.tmp.iterdir())
    assert len(list(store.root.glob("buckets/*/objects/*/*.data"))) == 1


def test_racing_commits_have_one_winner(store: FsStore) -> None:
    results: list[str] = []
    barrier = threading.Barrier(6)

    def commit(i: int) -> None:
        body = store.new_temp()
        body.write_bytes(f"{i}".encode())
        barrier.wait()
        try:
            store.commit(STORE, "race", body, 1, "bafkr4i-test", "binary/octet-stream", {})
            results.append("won")
        except S3Error as exc:
            results.append(exc.code)

    threads = [threading.Thread(target=commit, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["KeyExists"] * 5 + ["won"]
    assert len(list(store.root.glob("buckets/*/objects/*/*.data"))) == 1


def test_listing_prefix_bounds_cap_and_order(store: FsStore) -> None:
    keys = [f"p/{i:03d}" for i in range(50)] + ["p", "p0", "q/1", "p/sub/x", "p/sub/y"]
    for key in keys:
        _put(store, key)
    objects, prefixes = store.list(STORE, "p/", "", cap=1000)
    names = [o.key for o in objects]
    assert sorted(names) == sorted(k for k in keys if k.startswith("p/"))
    assert names != sorted(names)
    objects, prefixes = store.list(STORE, "p/", "/", cap=1000)
    assert prefixes == ["p/sub/"] and len(objects) == 50
    objects, prefixes = store.list(STORE, "", "", cap=7)
    assert len(objects) + len(prefixes) == 7
    store.delete(STORE, "p/000")
    assert "p/000" not in [o.key for o in store.list(STORE, "p/", "", cap=1000)[0]]
    with pytest.raises(S3Error) as exc:
        store.delete(STORE, "p/000")
    assert exc.value.code == "NoSuchKey"


def test_reopen_rebuilds_index(store: FsStore) -> None:
    _put(store, "kept/a")
    _put(store, "kept/b")
    reopened = FsStore(store.root)
    assert sorted(o.key for o in reopened.list(STORE, "", "", cap=10)[0]) == ["kept/a", "kept/b"]
    assert reopened.list_buckets()[0][0] == STORE


def test_remove_abandoned_uploads_keeps_young_ones_and_counts_bytes(store: FsStore) -> None:
    import json
    import os
    import time

    two_hours_ago = time.time() - 7200
    old = store.create_upload(STORE, "old", "binary/octet-stream", {})
    record = store.uploads / old / "upload.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "initiated": two_hours_ago}))
    part = store.new_temp()
    part.write_bytes(b"x" * 500)
    store.save_part(old, 1, part, "md5")
    store.create_upload(STORE, "young", "binary/octet-stream", {})
    cut_off = store.uploads / ("0" * 32)  # a crash between mkdir and writing the record: aged by its mtime
    cut_off.mkdir()
    os.utime(cut_off, (two_hours_ago, two_hours_ago))
    assert [u.key for u in store.list_uploads(STORE)] == ["old", "young"]  # oldest first
    removed, freed = store.remove_abandoned_uploads(3600)
    assert removed == 2 and freed >= 500
    assert [u.key for u in store.list_uploads(STORE)] == ["young"]
    assert store.remove_abandoned_uploads(0)[0] == 1 and not list(store.uploads.iterdir())
