"""Retries with exponential backoff and full jitter for transient object-store failures.

Stores raise `TransientStorageError` for failures worth retrying (5xx, dropped connections, truncated
bodies, timeouts); everything else is final. `IntegrityError` on a transfer is retried too, since a truncated
or garbled body shows up as a CID mismatch.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from modelopsx.errors import IntegrityError, StorageError

T = TypeVar("T")


class TransientStorageError(StorageError):
    """A failure that may succeed when retried: a 5xx answer, a dropped connection, a timeout."""


class EndpointUnreachableError(TransientStorageError):
    """Nothing answered at the endpoint (connection refused, DNS failure)."""


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TransientStorageError | IntegrityError)


@dataclass
class RetryPolicy:
    attempts: int = 6
    base_s: float = 0.05
    cap_s: float = 2.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)] (attempt counts from 0)."""
        upper = min(self.cap_s, self.base_s * (2**attempt))
        return (rng or random).uniform(0.0, upper)


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
    policy: RetryPolicy | None = None,
    counter: RetryCounter | None = None,
    retry_if: Callable[[BaseException], bool] = is_transient,
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
