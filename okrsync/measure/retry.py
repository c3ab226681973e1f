"""The one retry policy: every connector call goes through here, and nowhere else retries."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from okrsync.errors import FetchError, TransientFetchError

T = TypeVar("T")

ATTEMPTS = 3
BASE_WAIT = 0.5
MAX_BACKOFF = 8.0


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, FetchError) and exc.retryable


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, TransientFetchError) and exc.retry_after is not None:
        return exc.retry_after
    return float(min(MAX_BACKOFF, BASE_WAIT * 2 ** (state.attempt_number - 1)))


def call_with_retry(
    fn: Callable[[], T],
    *,
    max_wait: float = 60.0,
    attempts: int = ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
    bound: str = "this key result's interval",
) -> T:
    """Call `fn`, retrying transient FetchErrors (5xx, timeouts, 429) with backoff.

    A server that asks for a longer wait than `max_wait` (the KR's interval) fails at
    once with a clear error instead of blocking the other key results (`bound` says
    what `max_wait` is, for that error).
    """

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientFetchError) and (exc.retry_after or 0) > max_wait:
            raise type(exc)(
                f"{exc} (longer than {bound} of {max_wait:g}s; will try again next run)",
                exc.retry_after,
            ) from None

    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        retry=retry_if_exception(_retryable),
        wait=_wait,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(fn)
