"""Measuring a set of KRs once: plan queries, fetch each distinct one once, compute values.

Knows OKRs and the connector interface; knows nothing of HTTP or of the store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import structlog

from okrsync.config import formula, templating
from okrsync.config.loader import Config
from okrsync.config.model import KeyResult, Measure
from okrsync.connector import Connector, Query, Reading, create
from okrsync.errors import FetchError, OkrsyncError
from okrsync.measure.retry import call_with_retry
from okrsync.secrets import redact

log = structlog.get_logger("okrsync.measure.measurer")
ConnectorFactory = Callable[[str, Config], Connector]


@dataclass(frozen=True)
class Outcome:
    """The result of measuring one KR: a value, or the error that prevented it."""

    kr_id: str
    source: str
    query: str
    value: float | None = None
    inputs: dict[str, float] | None = None
    error: str | None = None
    note: str | None = None


@dataclass
class Fetch:
    source: str
    query: Query
    max_wait: float
    kr_ids: list[str] = field(default_factory=list)
    reading: Reading | None = None
    error: str | None = None


def _connector_factory(name: str, config: Config) -> Connector:
    return create(name, config.sources[name])


class Measurer:
    """Measures KRs of one config; keeps one connector per source across calls."""

    def __init__(
        self,
        config: Config,
        factory: ConnectorFactory = _connector_factory,
        sleep: Callable[[float], None] = time.sleep,
        workers: int = 64,
    ) -> None:
        self.config = config
        self.factory = factory
        self.sleep = sleep
        self.workers = workers
        self._connectors: dict[str, Connector | OkrsyncError] = {}
        self._limits = {
            n: threading.Semaphore(s.max_concurrency) for n, s in config.sources.items()
        }
        self._lock = threading.Lock()

    def requests_by_source(self) -> dict[str, int]:
        """HTTP requests each source's connector made (304 answers included)."""
        return {n: c.requests for n, c in self._connectors.items() if not isinstance(c, Exception)}

    def not_modified_by_source(self) -> dict[str, int]:
        """Requests answered 304 Not Modified (cost no quota), for connectors that track them."""
        counts = {
            n: int(getattr(c, "not_modified", 0))
            for n, c in self._connectors.items()
            if not isinstance(c, Exception)
        }
        return {n: c for n, c in counts.items() if c}

    def close(self) -> None:
        for conn in self._connectors.values():
            if not isinstance(conn, Exception):
                conn.close()

    def _connector(self, name: str) -> Connector:
        with self._lock:
            if name not in self._connectors:
                try:
                    self._connectors[name] = self.factory(name, self.config)
                except OkrsyncError as exc:
                    self._connectors[name] = exc
                except Exception as exc:  # a connector's constructor must not kill the run
                    self._connectors[name] = FetchError(f"{name}: cannot start: {redact(str(exc))}")
            conn = self._connectors[name]
        if isinstance(conn, Exception):
            raise conn
        return conn

    def _query(self, measure: Measure, now: datetime) -> Query:
        period = self.config.period
        today = now.astimezone(ZoneInfo(period.timezone)).date()
        values = templating.variables(period.name, period.start, period.end, today)
        fields = templating.render(measure.query_fields(), values)
        return Query(fields, period.starts_at, period.ends_at)

    def measure(
        self,
        krs: list[KeyResult],
        now: datetime,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Outcome]:
        """Measure `krs` (automated ones) as of `now`; identical queries are fetched once."""
        fetches: dict[tuple[str, str], Fetch] = {}
        wants: dict[str, list[tuple[str | None, Fetch]]] = {}
        for kr in krs:
            measures = kr.inputs.items() if kr.formula else [(None, kr)]
            for input_name, measure in measures:
                assert measure.source is not None
                query = self._query(measure, now)
                key = (measure.source, query.key)
                every = self.config.every_seconds(kr)
                fetch = fetches.setdefault(key, Fetch(measure.source, query, every))
                fetch.max_wait = min(fetch.max_wait, every)
                fetch.kr_ids.append(kr.id)
                wants.setdefault(kr.id, []).append((input_name, fetch))
        self._fetch_all(list(fetches.values()), progress)
        return [self._outcome(kr, wants[kr.id]) for kr in krs]

    def _fetch_all(self, fetches: list[Fetch], progress: Callable[[int, int], None] | None) -> None:
        """Run fetches with one pool per source, sized by its max_concurrency, all at once,
        so a long queue on one source never holds threads another source could use."""
        by_source: dict[str, list[Fetch]] = {}
        for fetch in fetches:
            by_source.setdefault(fetch.source, []).append(fetch)
        pools = [
            ThreadPoolExecutor(
                max_workers=min(self.config.sources[name].max_concurrency, len(todo), self.workers),
                thread_name_prefix=f"fetch-{name}",
            )
            for name, todo in by_source.items()
        ]
        try:
            futures = [
                pool.submit(self._run, fetch)
                for pool, todo in zip(pools, by_source.values(), strict=True)
                for fetch in todo
            ]
            for done, future in enumerate(as_completed(futures), start=1):
                future.result()
                if progress:
                    progress(done, len(futures))
        finally:
            for pool in pools:
                pool.shutdown(wait=True)

    def _run(self, fetch: Fetch) -> None:
        began = time.monotonic()
        try:
            conn = self._connector(fetch.source)
            with self._limits[fetch.source]:
                fetch.reading = call_with_retry(
                    lambda: conn.fetch(fetch.query), max_wait=fetch.max_wait, sleep=self.sleep
                )
        except OkrsyncError as exc:
            fetch.error = redact(str(exc))
        except Exception as exc:  # a connector bug must fail its KRs, not the run
            fetch.error = redact(f"{fetch.source}: unexpected {type(exc).__name__}: {exc}")
        log.info(
            "fetch",
            source=fetch.source,
            krs=fetch.kr_ids,
            query=fetch.query.describe(),
            duration_s=round(time.monotonic() - began, 3),
            outcome="ok" if fetch.error is None else "error",
            error=fetch.error,
        )

    def _outcome(self, kr: KeyResult, wanted: list[tuple[str | None, Fetch]]) -> Outcome:
        if not kr.formula:
            fetch = wanted[0][1]
            reading = fetch.reading
            return Outcome(
                kr.id,
                fetch.source,
                fetch.query.describe(),
                value=reading.value if reading else None,
                error=fetch.error,
                note=reading.note if reading else None,
            )
        query = (
            kr.formula
            + " with "
            + "; ".join(
                f"{name} = {fetch.source}: {fetch.query.describe()}" for name, fetch in wanted
            )
        )
        errors = [f"input {name}: {f.error}" for name, f in wanted if f.error]
        values = {str(name): f.reading.value for name, f in wanted if f.reading}
        if errors:
            return Outcome(kr.id, "formula", query, inputs=values or None, error="; ".join(errors))
        try:
            value = formula.evaluate(kr.formula, values)
        except formula.FormulaError as exc:
            return Outcome(kr.id, "formula", query, inputs=values, error=f"formula: {exc}")
        return Outcome(kr.id, "formula", query, value=value, inputs=values)
