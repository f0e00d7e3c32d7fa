"""Fault injection and counters for the emulator, so reliability tests can make the network misbehave.

Kinds: "500" (InternalError response), "drop" (close the socket without a response), "truncate" (advertise
the full Content-Length of a GetObject, send part of it, close). A fault is decided before a request body is
read, so a failed PUT never stores anything.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

FAULT_KINDS = frozenset({"500", "drop", "truncate"})


def parse_fault_kinds(kinds: Iterable[str] | str) -> frozenset[str]:
    items = [k.strip() for k in kinds.split(",")] if isinstance(kinds, str) else [str(k) for k in kinds]
    chosen = frozenset(k for k in items if k)
    unknown = chosen - FAULT_KINDS
    if unknown:
        raise ValueError(f"unknown fault kinds {sorted(unknown)}; choose from {sorted(FAULT_KINDS)}")
    return chosen


class FaultInjector:
    """Seeded, thread-safe choice of which requests fail and how."""

    def __init__(self, rate: float = 0.0, seed: int = 0, kinds: Iterable[str] | str = FAULT_KINDS) -> None:
        self.rate = rate
        self.kinds = parse_fault_kinds(kinds)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def pick(self, truncatable: bool) -> str | None:
        """The fault for this request, or None. `truncatable` says whether a body would be streamed back."""
        rate = self.rate
        if rate <= 0:
            return None
        options = sorted(k for k in self.kinds if truncatable or k != "truncate")
        with self._lock:
            if not options or self._rng.random() >= rate:
                return None
            return self._rng.choice(options)


@dataclass
class EmulatorStats:
    """Request and fault counters. Read with `snapshot()`; fields are live and updated under a lock."""

    requests: int = 0
    faults: int = 0
    faults_by_kind: Counter[str] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    bytes_in: int = 0
    bytes_out: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count_request(self, operation: str) -> None:
        with self._lock:
            self.requests += 1
            self.operations[operation] += 1

    def count_fault(self, kind: str) -> None:
        with self._lock:
            self.faults += 1
            self.faults_by_kind[kind] += 1

    def count_status(self, status: int) -> None:
        with self._lock:
            self.statuses[status] += 1

    def add_bytes(self, received: int = 0, sent: int = 0) -> None:
        with self._lock:
            self.bytes_in += received
            self.bytes_out += sent

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "requests": self.requests,
                "faults": self.faults,
                "faults_by_kind": dict(self.faults_by_kind),
                "operations": dict(self.operations),
                "statuses": {str(k): v for k, v in self.statuses.items()},
                "bytes_in": self.bytes_in,
                "bytes_out": self.bytes_out,
            }

    def reset(self) -> None:
        with self._lock:
            self.requests = self.faults = self.bytes_in = self.bytes_out = 0
            self.faults_by_kind.clear()
            self.operations.clear()
            self.statuses.clear()
