"""Backoff with full jitter, and which failures are retried."""

from __future__ import annotations

import random

import pytest

from modelopsx.errors import IntegrityError, KeyExistsError
from modelopsx.storage.retry import (
    EndpointUnreachableError,
    RetryCounter,
    RetryPolicy,
    TransientStorageError,
    call_with_retry,
    is_transient,
)


def test_full_jitter_stays_within_the_exponential_cap() -> None:
    policy = RetryPolicy(attempts=8, base_s=0.1, cap_s=1.0)
    rng = random.Random(3)
    for attempt in range(8):
        upper = min(1.0, 0.1 * 2**attempt)
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(0.0 <= d <= upper for d in delays)
        assert max(delays) > upper * 0.8  # jitter spans the whole window, not a fixed step


def test_transient_failures_are_retried_and_counted() -> None:
    calls = []
    slept: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TransientStorageError("HTTP 500")
        return "ok"

    counter = RetryCounter()
    assert call_with_retry(flaky, RetryPolicy(attempts=5), counter, sleep=slept.append) == "ok"
    assert len(calls) == 3 and counter.value == 2 and len(slept) == 2


def test_final_errors_are_not_retried() -> None:
    calls = []

    def refuses() -> None:
        calls.append(1)
        raise KeyExistsError("key exists")

    with pytest.raises(KeyExistsError):
        call_with_retry(refuses, RetryPolicy(attempts=5), sleep=lambda _: None)
    assert len(calls) == 1


def test_gives_up_after_the_last_attempt() -> None:
    counter = RetryCounter()

    def always() -> None:
        raise IntegrityError("cut short")

    with pytest.raises(IntegrityError):
        call_with_retry(always, RetryPolicy(attempts=3), counter, sleep=lambda _: None)
    assert counter.value == 2


def test_classification() -> None:
    assert is_transient(TransientStorageError("x")) and is_transient(EndpointUnreachableError("x"))
    assert is_transient(IntegrityError("x")) and not is_transient(KeyExistsError("x"))
    assert not is_transient(ValueError("x"))
