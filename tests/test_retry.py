"""The one retry policy: what it retries, how long it waits, and when it gives up at once."""

from __future__ import annotations

import pytest

from okrsync.errors import AuthError, RateLimitedError, TransientFetchError
from okrsync.measure.retry import call_with_retry


def flaky(errors: list[Exception], value: int = 7) -> tuple[list[int], object]:
    calls: list[int] = []

    def fn() -> int:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return value

    return calls, fn


def test_transient_errors_are_retried_with_backoff() -> None:
    """Two transient failures then success: three calls, exponential waits."""
    calls, fn = flaky([TransientFetchError("a"), TransientFetchError("b")])
    slept: list[float] = []
    assert call_with_retry(fn, sleep=slept.append) == 7  # type: ignore[arg-type]
    assert len(calls) == 3 and slept == [0.5, 1.0]


def test_permanent_errors_are_not_retried() -> None:
    """An auth failure is raised at once: retrying cannot fix credentials."""
    calls, fn = flaky([AuthError("401")])
    with pytest.raises(AuthError):
        call_with_retry(fn, sleep=lambda s: None)  # type: ignore[arg-type]
    assert len(calls) == 1


def test_retry_after_is_honoured_for_429_and_503() -> None:
    """The server's Retry-After decides the wait, for rate limits and 503s alike."""
    _, fn = flaky([RateLimitedError("429", 7), TransientFetchError("503", 3)])
    slept: list[float] = []
    assert call_with_retry(fn, sleep=slept.append) == 7  # type: ignore[arg-type]
    assert slept == [7, 3]


def test_wait_longer_than_interval_fails_at_once() -> None:
    """A Retry-After longer than the KR's interval fails now instead of blocking others."""
    calls, fn = flaky([RateLimitedError("gh: rate limited", 3600)])
    slept: list[float] = []
    with pytest.raises(RateLimitedError, match="longer than this key result's interval of 300s"):
        call_with_retry(fn, max_wait=300, sleep=slept.append)  # type: ignore[arg-type]
    assert len(calls) == 1 and slept == []


def test_gives_up_after_three_attempts() -> None:
    """The last transient error is raised after three attempts."""
    calls, fn = flaky([TransientFetchError(str(i)) for i in range(5)])
    with pytest.raises(TransientFetchError, match="2"):
        call_with_retry(fn, sleep=lambda s: None)  # type: ignore[arg-type]
    assert len(calls) == 3
