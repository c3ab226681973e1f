"""Measuring a set of KRs once: fetch each planned query once, then compute each KR's value.

Knows OKRs and the connector interface; knows nothing of HTTP, progress or the store.
Every KR fails alone: whatever goes wrong while planning, fetching or computing one KR
(a bug included) becomes that KR's error, and the others are measured.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import structlog
from pydantic import ValidationError

from okrsync.config import formula, plugins
from okrsync.config.loader import Config
from okrsync.config.model import KeyResult
from okrsync.connector import ANSWER_LIMIT, Connector, QueryBase, bound_answer
from okrsync.errors import FetchError, NoDataError, OkrsyncError
from okrsync.measure.measurement import Measurement
from okrsync.measure.plan import Fetch, Plan, plan
from okrsync.measure.retry import call_with_retry
from okrsync.measure.slo_measurement import slo_measurement
from okrsync.secrets import redact

log = structlog.get_logger("okrsync.measure")
ConnectorFactory = Callable[[str, Config], Connector]


def _connector_factory(name: str, config: Config) -> Connector:
    return plugins.create(name, config.sources[name])


def failure(kr: KeyResult, now: datetime, exc: BaseException) -> Measurement:
    """The measurement of a KR whose value could not be computed because of an unexpected
    exception (a bug): the error is stored on that KR, the traceback goes to the debug log."""
    error = redact(
        f"{'formula: ' if kr.formula else ''}internal error: {type(exc).__name__}: {exc} "
        "(this is a bug; debug logging shows the traceback)"
    )
    log.warning("kr_failed", kr=kr.id, error=error)
    log.debug("kr_failed_traceback", kr=kr.id, exc_info=exc)
    return Measurement(kr.id, now, "formula" if kr.formula else str(kr.source), None, error=error)


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
        self.limits = {n: threading.Semaphore(s.max_concurrency) for n, s in config.sources.items()}
        self._lock = threading.Lock()
        self.queries: dict[str, int] = {}  # distinct queries per source of the last measure()

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

    def connector(self, name: str) -> Connector:
        """The source's connector, created on first use (a failed start is raised again)."""
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

    def measure(
        self,
        krs: list[KeyResult],
        now: datetime,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Measurement]:
        """Measure `krs` (automated ones) as of `now`; identical queries are fetched once.

        The measurements are not yet assessed (no progress or status)."""
        todo, failed = self._plan(krs, now)
        self.queries = {}
        for fetch in todo.fetches:
            self.queries[fetch.source] = self.queries.get(fetch.source, 0) + 1
        origin = time.monotonic()
        self._fetch_all(todo.fetches, progress)
        for fetch in todo.fetches:  # finish times on the run's clock (`now`, pinned in tests)
            if fetch.finished is not None:
                fetch.fetched_at = now + timedelta(seconds=max(fetch.finished - origin, 0.0))
        return [failed.get(kr.id) or self._isolated(kr, todo, now) for kr in krs]

    def _plan(self, krs: list[KeyResult], now: datetime) -> tuple[Plan, dict[str, Measurement]]:
        """The plan of `krs`; should planning fail, the KRs that fail it alone are left out
        with their failure, and the rest are planned together (sharing fetches)."""
        try:
            return plan(self.config, krs, now), {}
        except Exception:
            log.debug("plan_failed", exc_info=True)
        failed: dict[str, Measurement] = {}
        for kr in krs:
            try:
                plan(self.config, [kr], now)
            except Exception as exc:
                failed[kr.id] = failure(kr, now, exc)
        return plan(self.config, [kr for kr in krs if kr.id not in failed], now), failed

    def _isolated(self, kr: KeyResult, todo: Plan, now: datetime) -> Measurement:
        """`_measurement`, with any exception turned into this KR's failure."""
        try:
            return self._measurement(kr, todo.wants.get(kr.id, []), now)
        except Exception as exc:
            return failure(kr, now, exc)

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
            futures = {
                pool.submit(self._run, fetch): fetch
                for pool, todo in zip(pools, by_source.values(), strict=True)
                for fetch in todo
            }
            for done, future in enumerate(as_completed(futures), start=1):
                exc = future.exception()
                if exc is not None:  # _run failed outside its own guard: a bug
                    fetch = futures[future]
                    log.debug("fetch_failed", source=fetch.source, exc_info=exc)
                    fetch.reading = None
                    fetch.error = redact(f"{fetch.source}: unexpected {type(exc).__name__}: {exc}")
                if progress:
                    progress(done, len(futures))
        finally:
            for pool in pools:
                pool.shutdown(wait=True)

    def _run(self, fetch: Fetch) -> None:
        began = time.monotonic()
        try:
            conn = self.connector(fetch.source)
            query = as_query(self.config, fetch.source, fetch.fields)
            with self.limits[fetch.source]:
                fetch.reading = call_with_retry(
                    lambda: conn.fetch(query, fetch.window),
                    max_wait=fetch.max_wait,
                    sleep=self.sleep,
                )
        except OkrsyncError as exc:
            fetch.error = redact(str(exc))
            fetch.no_data = isinstance(exc, NoDataError)
        except Exception as exc:  # a connector bug must fail its KRs, not the run
            fetch.error = redact(f"{fetch.source}: unexpected {type(exc).__name__}: {exc}")
        fetch.finished = time.monotonic()
        fetch.duration_s = round(fetch.finished - began, 6)
        zero = fetch.no_data and fetch.empty_is_zero
        outcome = "ok" if fetch.error is None else "no_data" if zero else "error"
        emit = log.warning if outcome == "error" else log.info  # failures need to be seen
        emit(
            "fetch",
            source=fetch.source,
            krs=fetch.kr_ids,
            query=fetch.text,
            duration_s=round(fetch.duration_s, 3),
            outcome=outcome,
            error=fetch.error,
        )

    def _measurement(
        self, kr: KeyResult, wanted: list[tuple[str | None, Fetch]], now: datetime
    ) -> Measurement:
        if not kr.formula and not kr.slo:
            fetch = wanted[0][1]
            reading = fetch.reading
            return Measurement(
                kr.id,
                now,
                fetch.source,
                fetch.text,
                value=reading.value if reading else None,
                error=fetch.error,
                note=reading.note if reading else None,
                answer=safe_answer(reading.answer if reading else None),
                fetched_at=fetch.fetched_at,
                duration_s=fetch.duration_s,
            )
        m = (
            slo_measurement(kr, wanted, self.config.period, now)
            if kr.slo
            else self._formula(kr, wanted, now)
        )
        answers = {str(n): f.reading.answer for n, f in wanted if f.reading and f.reading.answer}
        stamps = [f.fetched_at for _, f in wanted if f.fetched_at is not None]
        durations = [f.duration_s for _, f in wanted if f.duration_s is not None]
        return replace(
            m,
            answer=safe_answer({"inputs": answers} if answers else None),
            fetched_at=max(stamps) if stamps else None,
            duration_s=max(durations) if durations else None,
        )

    def _formula(
        self, kr: KeyResult, wanted: list[tuple[str | None, Fetch]], now: datetime
    ) -> Measurement:
        assert kr.formula is not None
        query = (
            kr.formula
            + " with "
            + "; ".join(f"{name} = {fetch.source}: {fetch.text}" for name, fetch in wanted)
        )
        errors = [f"input {name}: {f.error}" for name, f in wanted if f.error]
        values = {str(name): f.reading.value for name, f in wanted if f.reading}
        if errors:
            return Measurement(
                kr.id, now, "formula", query, inputs=values or None, error="; ".join(errors)
            )
        try:
            value = formula.evaluate(kr.formula, values)
        except formula.FormulaError as exc:
            return Measurement(kr.id, now, "formula", query, inputs=values, error=f"formula: {exc}")
        return Measurement(kr.id, now, "formula", query, value=value, inputs=values)


def as_query(config: Config, source: str, fields: dict[str, Any]) -> QueryBase:
    """Templated query fields as the source's query model (checked at load; a
    placeholder's value can still break it)."""
    model = plugins.plugin(config.sources[source].type).query_model
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'query'}: {e['msg']}" for e in exc.errors()
        )
        raise FetchError(f"{source}: invalid query: {problems}") from None


def safe_answer(answer: dict[str, Any] | None) -> dict[str, Any] | None:
    """A raw answer fit to store: bounded (see `bound_answer`), secrets redacted, and
    never an error of its own (a connector's odd answer must not fail its KR)."""
    if answer is None:
        return None
    try:
        try:
            text: str | None = json.dumps(answer)
        except (TypeError, ValueError):  # values JSON has no type for: bound_answer's str()
            text = None
        if text is not None and len(text.encode()) <= ANSWER_LIMIT:  # the usual case
            clean = redact(text)
            if clean == text:
                return answer  # plain JSON, small, nothing to hide: kept as it is
            small: dict[str, Any] = json.loads(clean)
            return small
        bounded = bound_answer(answer)
        cleaned: dict[str, Any] = json.loads(redact(json.dumps(bounded)))
        return cleaned
    except (TypeError, ValueError):
        return {"unreadable": True}
