"""Registry on the Basin emulator: the cost curve of append, champion lookup and `registry list` by log
length, parallel record reads, and appends under contention.

Run with `python -m tests.benchmarks bench_registry` (10 and 1,000 versions), or with `--full` to add
10,000 versions and a two-writer race at that length (about 20,000 writes to seed: minutes).
Each append and lookup is measured cold: a fresh Registry, so no head is remembered in process.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from modelopsx.registry.champion import champion, promote_model
from modelopsx.registry.log import Registry, record_key
from modelopsx.storage.stores import open_store
from tests.fixtures_basin import BASIN_ACCESS_KEY, BASIN_SECRET_KEY, BASIN_STORE, start_emulator

RECORDS = 200
WRITERS = 8
APPENDS = 48
LATENCY_MS = 20  # per request, a stand-in for the network between a pipeline pod and Basin
REPEATS = 15


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _median_ms(fn: Callable[[], object]) -> float:
    return 1000 * statistics.median(_timed(fn) for _ in range(REPEATS))


def _use_emulator(endpoint: str) -> str:
    os.environ.update(
        {
            "MODELOPSX_BASIN_ENDPOINT": endpoint,
            "MODELOPSX_BASIN_ACCESS_KEY": BASIN_ACCESS_KEY,
            "MODELOPSX_BASIN_SECRET_KEY": BASIN_SECRET_KEY,
            "MODELOPSX_BASIN_STORE": BASIN_STORE,
        }
    )
    return f"basin://{BASIN_STORE}"


def curve(sizes: list[int]) -> None:
    """One model version and one promotion per step, as continuous training writes them."""
    with tempfile.TemporaryDirectory() as tmp:
        emulator = start_emulator(Path(tmp) / "basin")
        url = _use_emulator(emulator.endpoint)
        try:
            writer = Registry(open_store(url))
            have = 0
            rows = {}
            for size in sizes:
                started = time.perf_counter()
                for v in range(have + 1, size + 1):
                    writer.append("models", "det", {"dvc_hash": f"{v:032x}.dir", "metrics": {"recall": 0.5}})
                    promote_model(writer, "det", v, f"step {v}")
                have = size
                seeded = time.perf_counter() - started
                append_ms = _median_ms(lambda: Registry(open_store(url)).append("models", "det", {"x": 1}))
                champ_ms = _median_ms(lambda: champion(Registry(open_store(url)), "det"))
                list_ms = _median_ms(lambda: Registry(open_store(url)).page("promotions", "det", limit=20))
                rows[size] = (append_ms, champ_ms, list_ms)
                print(
                    f"{size:>6,} versions (seeded in {seeded:.0f}s): "
                    f"append {append_ms:6.1f} ms, champion lookup {champ_ms:6.1f} ms, "
                    f"list newest 20 {list_ms:6.1f} ms",
                    flush=True,
                )
            base = rows[sizes[0]]
            for size in sizes[1:]:
                ratios = [f"{a / b:.2f}x" for a, b in zip(rows[size], base, strict=True)]
                print(
                    f"ratio {size:,} / {sizes[0]} versions: append {ratios[0]}, champion lookup {ratios[1]}, "
                    f"list {ratios[2]} (goal: append and lookup <= 3x)",
                    flush=True,
                )
            if sizes[-1] >= 10_000:
                race(url, "promotions", "det")
        finally:
            emulator.stop()


def race(url: str, kind: str, name: str, per_writer: int = 25) -> None:
    """Two writers race at the log's current length: no duplicate, no gap."""
    start = Registry(open_store(url)).head(kind, name).seq
    barrier = threading.Barrier(2)
    got: list[list[int]] = [[], []]

    def run(w: int) -> None:
        registry = Registry(open_store(url))
        barrier.wait()
        got[w] = [registry.append(kind, name, {"writer": w}) for _ in range(per_writer)]

    threads = [threading.Thread(target=run, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seqs = sorted(got[0] + got[1])
    ok = seqs == list(range(start + 1, start + 2 * per_writer + 1))
    print(f"two writers racing at {start:,} versions: {len(seqs)} appends, no duplicate and no gap: {ok}")
    if not ok:
        raise AssertionError(f"race left duplicates or gaps: {seqs}")


def contention() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        emulator = start_emulator(Path(tmp) / "basin", latency_ms=LATENCY_MS)
        url = _use_emulator(emulator.endpoint)
        try:
            writer = Registry(open_store(url))
            for i in range(RECORDS):
                writer.append("evaluations", "bench", {"i": i, "metrics": {"recall": i / RECORDS}})

            def sequential() -> None:
                reader = Registry(open_store(url))
                for s in reader.sequence_numbers("evaluations", "bench"):
                    reader.store.get(record_key("evaluations", "bench", s))

            parallel_s = _timed(lambda: Registry(open_store(url)).records("evaluations", "bench"))
            sequential_s = _timed(sequential)
            print(
                f"read {RECORDS} records ({LATENCY_MS} ms per request): parallel {parallel_s:.2f}s, "
                f"sequential {sequential_s:.2f}s, speed-up x{sequential_s / parallel_s:.1f}"
            )
            one = Registry(open_store(url))
            single_s = _timed(lambda: [one.append("promotions", "solo", {"i": i}) for i in range(APPENDS)])
            registries = [Registry(open_store(url)) for _ in range(WRITERS)]

            def contended() -> None:
                with ThreadPoolExecutor(WRITERS) as pool:
                    list(
                        pool.map(
                            lambda r: [r.append("promotions", "race", {}) for _ in range(APPENDS // WRITERS)],
                            registries,
                        )
                    )

            contended_s = _timed(contended)
            conflicts = sum(r.stats["conflicts"] for r in registries)
            assert Registry(open_store(url)).sequence_numbers("promotions", "race") == list(
                range(1, APPENDS + 1)
            )
            print(
                f"{APPENDS} appends: 1 writer {APPENDS / single_s:.0f}/s, {WRITERS} writers "
                f"{APPENDS / contended_s:.0f}/s (ratio x{single_s / contended_s:.2f}), "
                f"{conflicts} conflict retries ({conflicts / APPENDS:.2f} per append)"
            )
        finally:
            emulator.stop()


def main() -> None:
    full = os.environ.get("BENCH_FULL") == "1"
    curve([10, 1_000, 10_000] if full else [10, 1_000])
    contention()


if __name__ == "__main__":
    main()
