"""The one backoff rule: exponential, capped, with or without full jitter."""

from __future__ import annotations

import math
import random

import pytest

from modelopsx.retry import RetryCounter, RetryPolicy, call_with_retry


def test_without_jitter_the_wait_is_the_bound_itself() -> None:
    policy = RetryPolicy(attempts=5, base_s=1.0, cap_s=math.inf, jitter=False)
    assert [policy.delay(attempt) for attempt in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert RetryPolicy(base_s=1.0, cap_s=3.0, jitter=False).delay(5) == 3.0


def test_with_jitter_the_wait_stays_below_the_capped_bound() -> None:
    policy = RetryPolicy(base_s=0.02, cap_s=0.5)
    rng = random.Random(1)
    assert all(0.0 <= policy.delay(attempt, rng) <= min(0.5, 0.02 * 2**attempt) for attempt in range(10))


def test_retries_only_what_retry_if_accepts() -> None:
    calls: list[int] = []
    slept: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TimeoutError("slow")
        return "ok"

    counter = RetryCounter()
    retry_timeouts = lambda exc: isinstance(exc, TimeoutError)  # noqa: E731
    assert call_with_retry(flaky, retry_timeouts, RetryPolicy(attempts=4), counter, slept.append) == "ok"
    assert len(calls) == 3 and counter.value == 2 and len(slept) == 2
    with pytest.raises(ValueError):
        call_with_retry(lambda: int("x"), retry_timeouts, sleep=slept.append)
    assert len(slept) == 2
