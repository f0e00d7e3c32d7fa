"""`make bench`: run every tests/benchmarks/bench_*.py (or those named) and print their ratios."""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path


def main() -> None:
    here = Path(__file__).parent
    names = sys.argv[1:] or sorted(p.stem for p in here.glob("bench_*.py"))
    failed = []
    for name in names:
        module = importlib.import_module(f"tests.benchmarks.{name}")
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        try:
            module.main()
        except Exception as exc:  # keep going: one broken benchmark must not hide the others
            failed.append(name)
            print(f"{name} failed: {exc!r}")
        print(f"({name} took {time.perf_counter() - started:.1f}s)", flush=True)
    if failed:
        sys.exit(f"benchmarks failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
