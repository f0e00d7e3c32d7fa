"""Registry on the Basin emulator: parallel vs sequential record reads, append throughput under contention.

Run with `python -m tests.benchmarks bench_registry`.
"""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from modelopsx.registry.champion import champion
from modelopsx.registry.log import Registry, record_key
from modelopsx.storage.stores import open_store
from tests.fixtures_basin import BASIN_ACCESS_KEY, BASIN_SECRET_KEY, BASIN_STORE, start_emulator

RECORDS = 200
WRITERS = 8
APPENDS = 48
LATENCY_MS = 20  # per request, a stand-in for the network between a pipeline pod and Basin


def _timed(fn: object) -> float:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        emulator = start_emulator(Path(tmp) / "basin", latency_ms=LATENCY_MS)
        os.environ.update(
            {
                "MODELOPSX_BASIN_ENDPOINT": emulator.endpoint,
                "MODELOPSX_BASIN_ACCESS_KEY": BASIN_ACCESS_KEY,
                "MODELOPSX_BASIN_SECRET_KEY": BASIN_SECRET_KEY,
                "MODELOPSX_BASIN_STORE": BASIN_STORE,
            }
        )
        url = f"basin://{BASIN_STORE}"
        try:
            writer = Registry(open_store(url))
            for i in range(RECORDS):
                writer.append("evaluations", "bench", {"i": i, "metrics": {"recall": i / RECORDS}})

            def sequential() -> None:
                reader = Registry(open_store(url))
                seqs = reader.sequence_numbers("evaluations", "bench")
                for s in seqs:
                    reader.store.get(record_key("evaluations", "bench", s))

            parallel_s = _timed(lambda: Registry(open_store(url)).records("evaluations", "bench"))
            sequential_s = _timed(sequential)
            print(
                f"read {RECORDS} records ({LATENCY_MS} ms per request): parallel {parallel_s:.2f}s, "
                f"sequential {sequential_s:.2f}s, "
                f"speed-up x{sequential_s / parallel_s:.1f}"
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

            champ_s = _timed(lambda: champion(Registry(open_store(url)), "none"))
            print(f"champion lookup with no promotion: {champ_s * 1000:.0f} ms")
        finally:
            emulator.stop()


if __name__ == "__main__":
    main()
