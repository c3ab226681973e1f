"""Opening the store as `okrsync run` starts: a database that refuses its credentials (or
is misconfigured) ends the start at once, exit 3; an unreachable one is tried again with
backoff, the service answering /readyz 503 meanwhile, until it answers or a signal stops."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import structlog

from okrsync.store.postgres import ConnectError
from okrsync.store.store import Store

log = structlog.get_logger("okrsync.service.store_open")
BACKOFF = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
"""Seconds before each new attempt; 30 s from the sixth on."""


def open_store(
    db: str | Path,
    stopping: Callable[[], bool],
    wait: Callable[[float], None],
    unreachable: Callable[[str], None] = lambda _: None,
) -> Store | None:
    """The store at `db`, once it can be reached; None when `stopping()` turned true first.

    `wait(seconds)` sleeps (a signal may cut it short); `unreachable(error)` is told each
    failed attempt, for /readyz."""
    for attempt in itertools.count(1):
        try:
            return Store(db)
        except ConnectError as exc:
            if not exc.retryable:
                raise
            delay = BACKOFF[min(attempt, len(BACKOFF)) - 1]
            log.warning("store_unreachable", error=str(exc), attempt=attempt, retry_in_s=delay)
            unreachable(str(exc))
        if stopping():
            return None
        wait(delay)
        if stopping():
            return None
    raise AssertionError("unreachable")  # itertools.count never ends
