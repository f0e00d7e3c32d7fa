"""`make bench`: run every tests/benchmarks/bench_*.py (or those named) and print their ratios.

`--full` (BENCH_FULL=1 for the modules) adds the long cases, such as the registry at 10,000 versions."""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path


def main() -> None:
    here = Path(__file__).parent
    args = sys.argv[1:]
    if "--full" in args:
        os.environ["BENCH_FULL"] = "1"
        args = [a for a in args if a != "--full"]
    names = args or sorted(p.stem for p in here.glob("bench_*.py"))
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
