"""8 processes promote at once against the Basin emulator: no record lost, no gap, champion = the last one."""

from __future__ import annotations

import json
import multiprocessing
import queue
from pathlib import Path
from typing import Any

import pytest

from modelopsx.registry.champion import champion, promote_model
from modelopsx.registry.log import Registry
from modelopsx.storage.basin_store import BasinStore
from modelopsx.storage.stores import open_store
from tests.fixtures_basin import BASIN_STORE, start_emulator
from tests.integration.registry.fixtures import set_basin_env

PROCESSES = 8
ROUNDS = 3


def promote_worker(writer: int, barrier: Any, results: Any) -> None:
    """Runs in a fresh process: wait for every writer, then promote ROUNDS times."""
    registry = Registry(open_store(f"basin://{BASIN_STORE}"))
    barrier.wait()
    seqs = []
    for round_ in range(ROUNDS):
        record = promote_model(registry, "det", writer + 1, f"writer {writer} round {round_}")
        seqs.append(record["seq"])
    results.put({"writer": writer, "seqs": seqs, **registry.stats})


def collect(procs: list[Any], results: Any) -> list[dict[str, Any]]:
    """Every worker's report; fails at once (instead of waiting) when a worker dies."""
    reports: list[dict[str, Any]] = []
    polls = 0
    while len(reports) < len(procs):
        try:
            reports.append(results.get(timeout=1))
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            assert not dead, f"promotion workers failed with exit codes {dead}"
            polls += 1
            assert polls < 600, "promotion workers made no progress"
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return reports


@pytest.mark.parametrize("fail_rate", [0.0, 0.05], ids=["clean", "faults"])
def test_concurrent_promotions_are_all_recorded_gap_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_rate: float
) -> None:
    # "500" and "drop" faults; truncated bodies would only stall the client for its read timeout.
    emulator = start_emulator(tmp_path / "basin", latency_ms=2, fault_kinds="500,drop")
    try:
        set_basin_env(monkeypatch, emulator.endpoint)
        registry = Registry(open_store(f"basin://{BASIN_STORE}"))
        for writer in range(PROCESSES):
            registry.append("models", "det", {"dvc_hash": f"{writer:032x}.dir", "metrics": {}})
        emulator.fail_rate = fail_rate  # injected faults from here on: retries must not duplicate records
        ctx = multiprocessing.get_context("spawn")
        barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
        procs = [ctx.Process(target=promote_worker, args=(w, barrier, results)) for w in range(PROCESSES)]
        for p in procs:
            p.start()
        reports = collect(procs, results)
        emulator.fail_rate = 0.0

        records = Registry(open_store(f"basin://{BASIN_STORE}")).records("promotions", "det")
        total = PROCESSES * ROUNDS
        assert [r["seq"] for r in records] == list(range(1, total + 1))  # gap-free, nothing lost
        reasons = sorted(r["reason"] for r in records)
        assert reasons == sorted(f"writer {w} round {r}" for w in range(PROCESSES) for r in range(ROUNDS))
        assert sorted(s for rep in reports for s in rep["seqs"]) == list(range(1, total + 1))
        for rep in reports:
            assert rep["seqs"] == sorted(rep["seqs"])  # each writer's own promotions stay in order
        current = champion(registry, "det")
        assert current is not None and current["promotion"]["seq"] == total
        assert current["seq"] == records[-1]["model_version"]
        conflicts = sum(rep["conflicts"] for rep in reports)
        print(
            "registry concurrency:",
            json.dumps(
                {
                    "processes": PROCESSES,
                    "records": len(records),
                    "conflict_retries": conflicts,
                    "fail_rate": fail_rate,
                    "emulator": emulator.stats,
                },
                default=str,
            ),
        )
    finally:
        emulator.stop()


def test_records_beyond_the_list_cap_are_all_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    emulator = start_emulator(tmp_path / "basin")
    try:
        set_basin_env(monkeypatch, emulator.endpoint)
        writer = Registry(BasinStore.from_settings())
        for i in range(12):
            assert writer.append("evaluations", "det", {"i": i}) == i + 1
        emulator.list_cap = 5  # from now on every listing is cut at 5 objects, in no order
        fresh = Registry(BasinStore.from_settings(list_cap=5))
        assert [r["i"] for r in fresh.records("evaluations", "det")] == list(range(12))
        assert fresh.append("evaluations", "det", {"i": 12}) == 13  # the next seq comes from the full listing
    finally:
        emulator.stop()
