from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelopsx.errors import KeyExistsError, NotFoundError
from modelopsx.registry.log import Registry, RegistryError, record_key
from modelopsx.storage.base import Listing, ObjectInfo, ObjectStore
from modelopsx.storage.stores import open_store
from tests.store_wrappers import PassThroughStore


class DelegatingStore(PassThroughStore):
    """A real store seen through a wrapper that can reproduce races and lost replies deterministically."""

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.hide_newest_once = False
        self.lose_reply_once = False

    def put_if_absent(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> ObjectInfo:
        info = self.inner.put_if_absent(key, data, metadata)
        if self.lose_reply_once:  # the write landed, the reply did not: a client retry then sees the key
            self.lose_reply_once = False
            raise KeyExistsError(f"key {key!r} already exists")
        return info

    def list(self, prefix: str = "", delimiter: str | None = None) -> Listing:
        listing = self.inner.list(prefix, delimiter)
        records = [i for i in listing.objects if i.key.endswith(".json") and "/_index/" not in i.key]
        if self.hide_newest_once and records:  # a listing that lags behind another writer
            self.hide_newest_once = False
            newest = max(records, key=lambda i: i.key)
            return Listing([i for i in listing.objects if i is not newest], listing.prefixes)
        return listing


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return open_store(str(tmp_path / "store"))


def test_append_assigns_gap_free_sequence_and_reads_sorted(store: ObjectStore) -> None:
    registry = Registry(store)
    seqs = [registry.append("models", "det", {"metrics": {"recall": i / 10}}) for i in range(12)]
    assert seqs == list(range(1, 13))
    records = registry.records("models", "det")
    assert [r["seq"] for r in records] == seqs
    assert records[3]["metrics"]["recall"] == 0.3 and records[3]["name"] == "det"
    assert all(r["created_at"] and r["record_id"] for r in records)
    latest = registry.latest("models", "det")
    assert latest is not None and latest["seq"] == 12
    assert json.loads(store.get("registry/models/det/00000005.json"))["seq"] == 5
    assert registry.names("models") == ["det"]
    assert Registry(store).records("models", "det") == records  # a fresh reader sees the same log


def test_conflict_retries_and_never_overwrites(store: ObjectStore) -> None:
    racy = DelegatingStore(store)
    first, second = Registry(store), Registry(racy)
    first.append("promotions", "det", {"reason": "a"})
    first.append("promotions", "det", {"reason": "b"})
    racy.hide_newest_once = True  # the second writer believes seq 2 is free
    assert second.append("promotions", "det", {"reason": "c"}) == 3
    assert second.stats["conflicts"] == 1
    assert [r["reason"] for r in Registry(store).records("promotions", "det")] == ["a", "b", "c"]


def test_lost_reply_is_not_written_twice(store: ObjectStore) -> None:
    flaky = DelegatingStore(store)
    flaky.lose_reply_once = True
    registry = Registry(flaky)
    assert registry.append("evaluations", "det", {"x": 1}) == 1
    assert registry.append("evaluations", "det", {"x": 2}) == 2
    assert [r["x"] for r in Registry(store).records("evaluations", "det")] == [1, 2]


def test_seq_fields_and_unknown_version(store: ObjectStore) -> None:
    registry = Registry(store)
    registry.append("datasets", "ped", {"dvc_hash": "h"}, seq_fields=("version",))
    assert registry.get("datasets", "ped", 1)["version"] == 1
    with pytest.raises(NotFoundError) as info:
        registry.get("datasets", "ped", 7)
    assert "existing versions: 1" in info.value.message
    assert registry.latest("datasets", "other") is None and registry.records("datasets", "other") == []


@pytest.mark.parametrize(
    "kind, name", [("model", "det"), ("models", "../x"), ("models", ""), ("models", "a/b")]
)
def test_invalid_kind_or_name(store: ObjectStore, kind: str, name: str) -> None:
    with pytest.raises(RegistryError):
        Registry(store).append(kind, name, {})


def test_record_key_layout() -> None:
    assert record_key("promotions", "det", 42) == "registry/promotions/det/00000042.json"


def test_page_shows_the_newest_or_the_ones_after_since(store: ObjectStore) -> None:
    registry = Registry(store)
    for i in range(45):
        registry.append("evaluations", "det", {"i": i})
    newest = registry.page("evaluations", "det", limit=20)
    assert (newest.head, newest.first, newest.last) == (45, 26, 45)
    assert [r["seq"] for r in newest.records] == list(range(26, 46)) and newest.missing == []
    after = registry.page("evaluations", "det", since=10, limit=5)
    assert [r["seq"] for r in after.records] == [11, 12, 13, 14, 15]
    assert registry.page("evaluations", "det", since=45).records == []
    assert [r["seq"] for r in registry.iter_records("evaluations", "det", since=40)] == [41, 42, 43, 44, 45]
    assert [r["seq"] for r in registry.iter_newest("evaluations", "det")] == list(range(45, 0, -1))
    assert registry.page("evaluations", "none").head == 0
    with pytest.raises(RegistryError, match="--limit must be at least 1"):
        registry.page("evaluations", "det", limit=0)


def test_describe_versions_collapses_runs() -> None:
    from modelopsx.registry.log import describe_versions

    assert describe_versions([1, 2]) == "1, 2"
    assert describe_versions([1, 2, 3, 4, 7, 9, 10, 11]) == "1-4, 7, 9-11"
    assert describe_versions([]) == ""
