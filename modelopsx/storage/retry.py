"""Which object-store failures are worth retrying; the backoff itself is modelopsx.retry's.

Stores raise `TransientStorageError` for failures worth retrying (5xx, dropped connections, truncated
bodies, timeouts); everything else is final. `IntegrityError` on a transfer is retried too, since a truncated
or garbled body shows up as a CID mismatch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from modelopsx import retry
from modelopsx.errors import IntegrityError, StorageError
from modelopsx.retry import RetryCounter, RetryPolicy

T = TypeVar("T")


class TransientStorageError(StorageError):
    """A failure that may succeed when retried: a 5xx answer, a dropped connection, a timeout."""


class EndpointUnreachableError(TransientStorageError):
    """Nothing answered at the endpoint (connection refused, DNS failure)."""


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TransientStorageError | IntegrityError)


def call_with_retry(
    fn: Callable[[], T],
    policy: RetryPolicy | None = None,
    counter: RetryCounter | None = None,
    retry_if: Callable[[BaseException], bool] = is_transient,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `fn` until it succeeds, retrying the failures a store call may recover from (`is_transient`)."""
    return retry.call_with_retry(fn, retry_if, policy, counter, sleep)
