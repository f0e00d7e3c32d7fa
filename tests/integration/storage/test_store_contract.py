"""The ObjectStore contract, run unchanged against every backend on a real server."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from modelopsx.errors import KeyExistsError, NotFoundError, StorageError
from modelopsx.storage.base import ObjectStore
from modelopsx.storage.cid import cid_of_bytes

KINDS = ["local", "s3", "gs", "basin"]


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, store_factory: Callable[..., ObjectStore]) -> ObjectStore:
    return store_factory(request.param)


def test_put_get_head_round_trip_with_cid(store: ObjectStore) -> None:
    data = b"pedestrians " * 100
    info = store.put("a/b/c.bin", data, {"kind": "test"})
    assert info.cid == cid_of_bytes(data) and info.size == len(data)
    assert store.get("a/b/c.bin") == data
    head = store.head("a/b/c.bin")
    assert head is not None and head.size == len(data) and head.cid == cid_of_bytes(data)
    assert store.head("a/b/missing") is None
    assert store.exists("a/b/c.bin") and not store.exists("a/b/missing")


def test_get_inclusive_range(store: ObjectStore) -> None:
    store.put("r.bin", bytes(range(256)))
    assert store.get("r.bin", (10, 19)) == bytes(range(10, 20))
    assert store.get("r.bin", (0, 0)) == b"\x00"
    assert store.get("r.bin", (250, 255)) == bytes(range(250, 256))


def test_missing_key_is_not_found(store: ObjectStore) -> None:
    with pytest.raises(NotFoundError):
        store.get("nothing/here")
    with pytest.raises(NotFoundError):
        store.delete("nothing/here")


def test_put_if_absent_never_overwrites(store: ObjectStore) -> None:
    store.put_if_absent("registry/00000001.json", b"first")
    with pytest.raises(KeyExistsError):
        store.put_if_absent("registry/00000001.json", b"second")
    assert store.get("registry/00000001.json") == b"first"


def test_concurrent_put_if_absent_has_one_winner(store: ObjectStore, request: pytest.FixtureRequest) -> None:
    if request.node.callspec.params["store"] == "gs":
        pytest.skip("gcp-storage-emulator does not enforce ifGenerationMatch; real GCS does")
    wins: list[int] = []
    losses: list[int] = []

    def attempt(i: int) -> None:
        try:
            store.put_if_absent("race.json", f"writer {i}".encode())
            wins.append(i)
        except KeyExistsError:
            losses.append(i)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 5
    assert store.get("race.json") == f"writer {wins[0]}".encode()


def test_list_prefix_and_delimiter(store: ObjectStore) -> None:
    for key in ["d/1.txt", "d/2.txt", "d/sub/3.txt", "d/sub/deep/4.txt", "e/5.txt", "dx.txt"]:
        store.put(key, key.encode())
    flat = sorted(o.key for o in store.list("d/").objects)
    assert flat == ["d/1.txt", "d/2.txt", "d/sub/3.txt", "d/sub/deep/4.txt"]
    level = store.list("d/", delimiter="/")
    assert sorted(o.key for o in level.objects) == ["d/1.txt", "d/2.txt"]
    assert sorted(level.prefixes) == ["d/sub/"]
    root = store.list("", delimiter="/")
    assert sorted(o.key for o in root.objects) == ["dx.txt"] and sorted(root.prefixes) == ["d/", "e/"]
    assert [o.key for o in store.iter_all("d")] == [
        "d/1.txt",
        "d/2.txt",
        "d/sub/3.txt",
        "d/sub/deep/4.txt",
        "dx.txt",
    ]
    sizes = {o.key: o.size for o in store.iter_all()}
    assert sizes["e/5.txt"] == len(b"e/5.txt")


def test_delete(store: ObjectStore) -> None:
    store.put("gone.txt", b"x")
    store.delete("gone.txt")
    assert store.head("gone.txt") is None
    assert [o.key for o in store.iter_all()] == []


@pytest.mark.parametrize("key", ["../escape", "/abs", "a/../b", "a//b", "", "a\\b"])
def test_bad_keys_are_refused(store: ObjectStore, key: str) -> None:
    with pytest.raises(StorageError, match="invalid object key"):
        store.put(key, b"x")
    with pytest.raises(StorageError, match="invalid object key"):
        store.get(key)


def test_empty_object(store: ObjectStore) -> None:
    store.put("empty", b"")
    assert store.get("empty") == b""
    head = store.head("empty")
    assert head is not None and head.size == 0
