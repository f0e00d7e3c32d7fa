"""The emulator's file store: names, put-if-absent commits, listing order and cap, crash debris."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modelopsx.basin.root_lock import RootInUseError
from modelopsx.basin.s3xml import S3Error
from modelopsx.basin.store_fs import FsStore, check_bucket_name

STORE = "0x" + "12" * 20 + ".unit"


def _put(store: FsStore, key: str, data: bytes = b"x") -> None:
    body = store.new_temp()
    body.write_bytes(data)
    store.commit(STORE, key, body, len(data), "bafkr4i-test", "binary/octet-stream", {})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FsStore]:
    s = FsStore(tmp_path)
    s.create_bucket(STORE)
    yield s
    s.close()


def _files(store: FsStore, key: str) -> tuple[Path, Path]:
    """(sidecar, data file) of a stored key."""
    meta = store.head(STORE, key)
    return store.data_path(STORE, meta).with_name(meta.data_file.split(".")[0] + ".json"), store.data_path(
        STORE, meta
    )


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
    store.close()
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


def test_a_second_store_on_the_root_is_refused_and_cleans_nothing(store: FsStore) -> None:
    in_flight = store.new_temp()
    in_flight.write_bytes(b"a body being received")
    with pytest.raises(RootInUseError) as exc:
        FsStore(store.root)
    assert f"pid {os.getpid()}" in str(exc.value) and "one emulator serves a root at a time" in str(exc.value)
    assert in_flight.read_bytes() == b"a body being received"
    store.close()
    FsStore(store.root).close()  # released: the root can be opened again


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda text: text[: len(text) // 2], "not valid JSON"),
        (lambda text: "{}", "names no key"),
        (lambda text: "[1, 2]", "not a JSON object"),
        (lambda text: json.dumps({**json.loads(text), "size": "many"}), "no valid size"),
        (lambda text: json.dumps({**json.loads(text), "data_file": "../x.data"}), "no data file of its own"),
        (lambda text: json.dumps({**json.loads(text), "key": "other"}), "another key's name"),
    ],
)
def test_a_damaged_record_is_quarantined_with_its_data_never_deleted(
    store: FsStore, damage: Callable[[str], str], reason: str
) -> None:
    _put(store, "torn", b"precious bytes")
    _put(store, "fine", b"other bytes")
    sidecar, data = _files(store, "torn")
    sidecar.write_text(damage(sidecar.read_text()))
    store.close()
    reopened = FsStore(store.root)
    try:
        (entry,) = reopened.quarantine.entries
        assert reason in entry.reason and entry.data_bytes == len(b"precious bytes")
        moved = [reopened.quarantine.folder / f for f in entry.files]
        assert sorted(p.suffix for p in moved) == [".data", ".json"]
        assert next(p for p in moved if p.suffix == ".data").read_bytes() == b"precious bytes"
        report = json.loads((reopened.quarantine.folder / "report.json").read_text())
        assert report["objects"][0]["files"] == list(entry.files)
        assert not sidecar.exists() and not data.exists()
        assert [o.key for o in reopened.list(STORE, "", "", cap=10)[0]] == ["fine"]
        _put(reopened, "torn", b"written again")  # the key is free
        assert reopened.head(STORE, "torn").size == len(b"written again")
    finally:
        reopened.close()


def test_records_whose_data_is_missing_or_resized_and_unnamed_data_are_quarantined(store: FsStore) -> None:
    _put(store, "missing", b"gone")
    _put(store, "resized", b"twelve bytes")
    _put(store, "kept", b"kept")
    _files(store, "missing")[1].unlink()
    _files(store, "resized")[1].write_bytes(b"six b")
    shard = _files(store, "kept")[1].parent
    (shard / ("0" * 64 + ".deadbeef.data")).write_bytes(b"renamed in, record never linked")
    store.close()
    reopened = FsStore(store.root)
    try:
        reasons = sorted(e.reason for e in reopened.quarantine.entries)
        assert len(reasons) == 3
        assert "data file is missing" in reasons[1] and "holds 5 bytes, the record says 12" in reasons[0]
        assert "no record names" in reasons[2]
        assert [o.key for o in reopened.list(STORE, "", "", cap=10)[0]] == ["kept"]
        assert reopened.quarantine.data_bytes == len(b"six b") + len(b"renamed in, record never linked")
    finally:
        reopened.close()


def test_a_record_damaged_while_serving_frees_its_key(store: FsStore) -> None:
    _put(store, "k", b"first")
    sidecar, data = _files(store, "k")
    sidecar.write_text("{")
    with pytest.raises(S3Error) as exc:
        store.head(STORE, "k")
    assert exc.value.code == "NoSuchKey"
    assert store.list(STORE, "", "", cap=10)[0] == []
    _put(store, "k", b"second")
    assert store.head(STORE, "k").size == len(b"second") and data.read_bytes() == b"first"


def test_a_clean_store_opens_without_a_quarantine(store: FsStore) -> None:
    _put(store, "a")
    store.close()
    reopened = FsStore(store.root)
    reopened.close()
    assert reopened.quarantine.entries == [] and not (store.root / "quarantine").exists()
