"""Retries with exponential backoff: the one rule for how long to wait before trying again.

Object-store calls (modelopsx.storage.retry says which failures are worth retrying), registry appends that
lost a race, and dataset downloads all wait by `RetryPolicy.delay`: `base_s * 2**attempt`, capped at
`cap_s`, with full jitter (uniform below that bound) so concurrent clients spread out.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass
class RetryPolicy:
    attempts: int = 6
    base_s: float = 0.05
    cap_s: float = 2.0
    jitter: bool = True  # False: wait the bound itself (a single client has no one to spread out from)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)] (attempt counts from 0)."""
        upper = min(self.cap_s, self.base_s * (2**attempt))
        return (rng or random).uniform(0.0, upper) if self.jitter else upper


class RetryCounter:
    """Thread-safe count of retries, shared by the workers of one sync."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self, n: int = 1) -> None:
        if n:
            with self._lock:
                self.value += n


def call_with_retry(
    fn: Callable[[], T],
    retry_if: Callable[[BaseException], bool],
    policy: RetryPolicy | None = None,
    counter: RetryCounter | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `fn` until it succeeds, retrying failures that `retry_if` accepts; re-raise the last one."""
    policy = policy or RetryPolicy()
    for attempt in range(policy.attempts):
        try:
            return fn()
        except Exception as exc:
            if attempt + 1 >= policy.attempts or not retry_if(exc):
                raise
            if counter is not None:
                counter.add()
            sleep(policy.delay(attempt))
    raise AssertionError("unreachable")  # the loop either returns or raises
