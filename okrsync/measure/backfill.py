"""Fetching a backfill: send its planned requests (one pool per source, within the
source's own limits) and turn each KR's answers into one measurement per instant.

A failed instant is reported, never stored; an instant with no data is a gap, never 0.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from okrsync.config import formula
from okrsync.config.loader import Config
from okrsync.connector import Window
from okrsync.errors import OkrsyncError
from okrsync.measure.backfill_plan import Job, Request
from okrsync.measure.measurement import Measurement
from okrsync.measure.measurer import Measurer, as_query, safe_answer
from okrsync.measure.retry import call_with_retry
from okrsync.secrets import redact
from okrsync.timefmt import utcnow

log = structlog.get_logger("okrsync.backfill")
MAX_WAIT = 900.0
"""The longest a server may ask a backfill to wait before a retry (a search quota resets
within a minute, an hourly one within the hour: past this the points fail, a re-run
tries them again)."""


class Stopped(OkrsyncError):
    """A retry's wait was cut short by a stop (Ctrl-C, SIGTERM, a reload)."""


@dataclass
class Outcome:
    """One KR's backfill as measured: the rows to store, the failed instants with their
    errors, and the instants that had no data."""

    rows: list[Measurement] = field(default_factory=list)
    failed: list[tuple[datetime, str]] = field(default_factory=list)
    gaps: int = 0


class Fetcher:
    """Sends requests in the order given, each source through a pool of its
    max_concurrency, so the first KRs' requests finish first."""

    def __init__(
        self,
        config: Config,
        measurer: Measurer,
        on_done: Callable[[], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        """`on_done` is called (from a fetch thread) as each request finishes; `stop` cuts
        a retry's wait short (the request then fails, and is asked again next run)."""
        self.stop = stop or threading.Event()
        self.config = config
        self.on_done = on_done
        self.measurer = measurer
        self.window = Window(config.period.starts_at, config.period.ends_at)
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._futures: dict[int, Future[None]] = {}
        self.done = 0
        """Requests finished (answered or failed)."""
        self._lock = threading.Lock()

    def submit(self, requests: list[Request]) -> None:
        for request in requests:
            pool = self._pools.get(request.source)
            if pool is None:
                size = self.config.sources[request.source].max_concurrency
                pool = ThreadPoolExecutor(size, thread_name_prefix=f"backfill-{request.source}")
                self._pools[request.source] = pool
            self._futures[id(request)] = pool.submit(self._run, request)

    def wait(self, job: Job) -> bool:
        """Wait until every request of `job` is answered; False if stopped first."""
        for request in job.requests():
            future = self._futures[id(request)]
            while not future.done():
                if self.stop.wait(0.1):
                    return False
        return True

    def close(self, *, cancel: bool = False) -> None:
        """Stop the pools; `cancel`: drop the requests not yet sent (Ctrl-C)."""
        for pool in self._pools.values():
            pool.shutdown(wait=not cancel, cancel_futures=cancel)

    def _run(self, request: Request) -> None:
        began = time.monotonic()
        try:
            conn = self.measurer.connector(request.source)
            query = as_query(self.config, request.source, request.fields)
            limit = self.measurer.limits[request.source]

            def attempt() -> Any:  # the source's slot is held per attempt, not while waiting
                with limit:
                    if request.ranged:
                        first, last = request.instants[0], request.instants[-1]
                        return conn.fetch_range(  # type: ignore[attr-defined]
                            query, self.window, first, last, request.step
                        )
                    return conn.fetch(query, self.window)

            answer = call_with_retry(
                attempt, max_wait=MAX_WAIT, sleep=self._sleep, bound="a backfill's longest wait"
            )
            if request.ranged:
                for point in answer:
                    if point.reading is not None:
                        request.readings[point.at] = point.reading
                    elif point.error is not None:
                        request.errors[point.at] = redact(point.error)
            else:
                request.readings[request.instants[0]] = answer
        except OkrsyncError as exc:
            self._fail(request, redact(str(exc)))
        except Exception as exc:  # a connector bug fails its points, not the backfill
            self._fail(request, redact(f"{request.source}: unexpected {type(exc).__name__}: {exc}"))
        request.duration_s = round(time.monotonic() - began, 6)
        with self._lock:
            self.done += 1
        if self.on_done:
            self.on_done()
        log.info(
            "backfill_fetch",
            source=request.source,
            query=request.text,
            points=len(request.instants),
            duration_s=round(request.duration_s, 3),
            error=next(iter(request.errors.values()), None),
        )

    def _sleep(self, seconds: float) -> None:
        """A retry's wait, cut short (the request fails) when the backfill is stopped."""
        if self.stop.wait(seconds):
            raise Stopped("backfill stopped")

    @staticmethod
    def _fail(request: Request, error: str) -> None:
        request.readings.clear()
        for at in request.instants:
            request.errors[at] = error


def outcome(job: Job, fetched_at: datetime | None = None) -> Outcome:
    """The job's measurements from its answered requests (not yet assessed)."""
    out = Outcome()
    stamp = fetched_at or utcnow()
    kr = job.kr
    for at in job.instants:
        values: dict[str, float] = {}
        errors: list[str] = []
        gap = False
        texts: list[str] = []
        last: Request | None = None
        for name, source, by_instant in job.wants:
            request = by_instant[at]
            last = request
            if kr.formula:
                texts.append(f"{name} = {source}: {request.text}")
            if at in request.errors:
                errors.append(f"input {name}: {request.errors[at]}" if name else request.errors[at])
            elif at in request.readings:
                values[str(name)] = request.readings[at].value
            else:
                gap = True
        if errors:
            out.failed.append((at, "; ".join(errors)))
            continue
        if gap or last is None:
            out.gaps += 1
            continue
        if not kr.formula:
            reading = last.readings[at]
            out.rows.append(
                Measurement(
                    kr.id,
                    at,
                    last.source,
                    last.text,
                    value=reading.value,
                    note=reading.note,
                    answer=safe_answer(reading.answer),
                    fetched_at=stamp,
                    duration_s=last.duration_s,
                    backfilled=True,
                )
            )
            continue
        try:
            value = formula.evaluate(kr.formula, values)
        except formula.FormulaError as exc:
            out.failed.append((at, f"formula: {exc}"))
            continue
        query = f"{kr.formula} with {'; '.join(texts)}"
        out.rows.append(
            Measurement(
                kr.id,
                at,
                "formula",
                query,
                value=value,
                inputs=values,
                fetched_at=stamp,
                backfilled=True,
            )
        )
    return out
