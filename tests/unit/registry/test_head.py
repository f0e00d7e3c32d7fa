"""Finding a log's head in a constant number of small listings, with hints, without them, and with gaps."""

from __future__ import annotations

import json
import threading
import warnings
from pathlib import Path

import pytest

from modelopsx.registry.head import LogIndex
from modelopsx.registry.log import Registry, RegistryGapWarning, record_key
from modelopsx.storage.base import Listing, ObjectStore
from modelopsx.storage.stores import open_store
from tests.store_wrappers import PassThroughStore


class CountingStore(PassThroughStore):
    """Counts listings: the head search's cost, independent of the machine's speed."""

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.lists = 0
        self._lock = threading.Lock()

    def list(self, prefix: str = "", delimiter: str | None = None) -> Listing:
        with self._lock:
            self.lists += 1
        return self.inner.list(prefix, delimiter)


def seed_legacy_log(root: Path, kind: str, name: str, count: int) -> None:
    """Records as a store written before hints existed holds them: files only, no `_index/`."""
    folder = root / "registry" / kind / name
    folder.mkdir(parents=True)
    for seq in range(1, count + 1):
        body = {"seq": seq, "kind": kind, "name": name, "record_id": f"seed-{seq}", "i": seq}
        (folder / f"{seq:08d}.json").write_text(json.dumps(body))


def lists_for_latest(store: ObjectStore, kind: str, name: str) -> tuple[int, int]:
    counting = CountingStore(store)
    latest = Registry(counting).latest(kind, name)
    assert latest is not None
    return int(latest["seq"]), counting.lists


def test_head_costs_the_same_listings_at_5_and_450_records(tmp_path: Path) -> None:
    short, long = open_store(str(tmp_path / "short")), open_store(str(tmp_path / "long"))
    for store, count in ((short, 5), (long, 450)):
        writer = Registry(store)
        for i in range(count):
            writer.append("promotions", "det", {"i": i})
    assert lists_for_latest(short, "promotions", "det") == (5, 4)
    assert lists_for_latest(long, "promotions", "det") == (450, 4)  # hints, top block hint, block, next
    hints = sorted(i.key.rsplit("/", 1)[-1] for i in long.iter_all("registry/promotions/det/_index/"))
    assert hints == ["000001", "000002", "000003", "000004"]
    assert Registry(long).sequence_numbers("promotions", "det") == list(range(1, 451))  # hints are no records


def test_store_without_hints_is_read_and_healed_by_the_next_append(tmp_path: Path) -> None:
    seed_legacy_log(tmp_path / "store", "models", "det", 1234)
    store = open_store(str(tmp_path / "store"))
    seq, lists = lists_for_latest(store, "models", "det")
    assert seq == 1234 and lists > 4  # found by galloping over the blocks
    assert Registry(store).append("models", "det", {"i": "new"}) == 1235
    assert lists_for_latest(store, "models", "det") == (1235, 4)  # the writer left the missing hint


def test_two_writers_racing_at_10000_versions_leave_no_duplicate_and_no_gap(tmp_path: Path) -> None:
    seed_legacy_log(tmp_path / "store", "promotions", "det", 10_000)
    per_writer = 30
    writers = [Registry(open_store(str(tmp_path / "store"))) for _ in range(2)]
    barrier = threading.Barrier(2)
    results: dict[int, list[int]] = {}

    def run(w: int) -> None:
        barrier.wait()
        append = writers[w].append
        results[w] = [append("promotions", "det", {"writer": w, "n": n}) for n in range(per_writer)]

    threads = [threading.Thread(target=run, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = 10_000 + 2 * per_writer
    assert sorted(results[0] + results[1]) == list(range(10_001, total + 1))  # no duplicate, no gap
    reader = Registry(open_store(str(tmp_path / "store")))
    assert reader.sequence_numbers("promotions", "det") == list(range(1, total + 1))
    page = reader.page("promotions", "det", limit=2 * per_writer)
    newest = [r["seq"] for _, r in zip(range(75), reader.iter_newest("promotions", "det"), strict=False)]
    assert newest == list(range(total, total - 75, -1))  # crosses from block 100 back into block 99
    mine = [r["n"] for r in page.records if r["writer"] == 0]
    assert mine == list(range(per_writer))  # each writer's records in its own order
    # the crossing into super-block 1 (seq 10,000) left its hint: a cold lookup stays at four listings
    assert lists_for_latest(open_store(str(tmp_path / "store")), "promotions", "det") == (total, 4)


def test_a_record_deleted_by_hand_is_reported_and_stepped_over(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "store"))
    writer = Registry(store)
    for i in range(10):
        writer.append("models", "det", {"i": i})
    store.delete(record_key("models", "det", 7))
    reader = Registry(store)
    with pytest.warns(RegistryGapWarning, match=r"misses version\(s\) 7 below its newest version 10"):
        latest = reader.latest("models", "det")
    assert latest is not None and latest["seq"] == 10
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once per reader, not on every call
        assert reader.append("models", "det", {"i": 10}) == 11
    page = reader.page("models", "det", since=5, limit=4)
    assert [r["seq"] for r in page.records] == [6, 8, 9] and page.missing == [7]
    assert reader.sequence_numbers("models", "det") == [1, 2, 3, 4, 5, 6, 8, 9, 10, 11]


def test_hinted_block_emptied_by_hand_falls_back_to_the_full_listing(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "store"))
    writer = Registry(store)
    for i in range(205):
        writer.append("models", "det", {"i": i})
    for seq in range(200, 206):
        store.delete(record_key("models", "det", seq))
    head = LogIndex(store, "registry/models/det/").find_head()
    assert head.seq == 199 and head.block == 1
    assert Registry(store).append("models", "det", {"i": "after"}) == 200
