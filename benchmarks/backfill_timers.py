"""Timers the backfill benchmark installs around product code (which stays unchanged):
the store's transactions and bulk writes, and each fetch thread's requests."""

from __future__ import annotations

import cProfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from okrsync.measure.backfill import Fetcher
from okrsync.store import backfilled
from okrsync.store.store import Store


@dataclass
class StoreTimes:
    transaction: float = 0.0
    append_many: float = 0.0
    existing: float = 0.0
    transactions: int = 0
    appended: int = 0
    first: float = 0.0
    """The run's first transaction: start_run and the period, if new."""


@contextmanager
def store_timers() -> Iterator[StoreTimes]:
    """Time the outermost Store.transaction blocks, append_many and backfilled.existing."""
    times = StoreTimes()
    original_tx, original_many = Store.transaction, Store.append_many
    original_existing = backfilled.existing

    @contextmanager
    def transaction(self: Store, fence: Callable[[], None] | None = None) -> Iterator[None]:
        outer = not self.db.in_transaction
        began = time.perf_counter()
        try:
            with original_tx(self, fence):
                yield
        finally:
            if outer:
                took = time.perf_counter() - began
                if not times.transactions:
                    times.first = took
                times.transaction += took
                times.transactions += 1

    def append_many(self: Store, run_id: str | None, rows: list[Any], period: str) -> None:
        began = time.perf_counter()
        try:
            original_many(self, run_id, rows, period)
        finally:
            times.append_many += time.perf_counter() - began
            times.appended += len(rows)

    def existing(*args: Any, **kwargs: Any) -> set[datetime]:
        began = time.perf_counter()
        try:
            return original_existing(*args, **kwargs)
        finally:
            times.existing += time.perf_counter() - began

    Store.transaction = transaction  # type: ignore[method-assign]
    Store.append_many = append_many  # type: ignore[method-assign]
    backfilled.existing = existing
    try:
        yield times
    finally:
        Store.transaction = original_tx  # type: ignore[method-assign]
        Store.append_many = original_many  # type: ignore[method-assign]
        backfilled.existing = original_existing


@contextmanager
def _around_fetches(wrap: Callable[[Callable[[], None]], None]) -> Iterator[None]:
    """Run each fetch thread's request as `wrap(request)`: what only sees its own thread
    (thread_time, cProfile) sees the fetches this way."""
    original = Fetcher._run

    def run(self: Any, request: Any) -> None:
        wrap(lambda: original(self, request))

    Fetcher._run = run  # type: ignore[method-assign]
    try:
        yield
    finally:
        Fetcher._run = original  # type: ignore[method-assign]


def fetch_cpu(into: list[float]) -> AbstractContextManager[None]:
    """Sum the CPU time (time.thread_time) of each fetch thread's requests into `into`."""

    def timed(request: Callable[[], None]) -> None:
        began = time.thread_time()
        try:
            request()
        finally:
            into.append(time.thread_time() - began)

    return _around_fetches(timed)


def profiled_fetches(profiles: list[cProfile.Profile]) -> AbstractContextManager[None]:
    """Profile each fetch thread's request too (cProfile sees only its own thread)."""

    def profiled(request: Callable[[], None]) -> None:
        prof = cProfile.Profile()
        profiles.append(prof)
        prof.runcall(request)

    return _around_fetches(profiled)
