"""`okrsync backfill`: measure KRs for past instants and store them, one transaction per
KR, never twice for one instant. Planning (what, when, how many requests) is separate
from doing, so `--dry-run` shows the plan and writes nothing."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from okrsync.config.loader import Config
from okrsync.config.model import KeyResult
from okrsync.errors import OkrsyncError, UsageError
from okrsync.measure.backfill import Fetcher, outcome
from okrsync.measure.backfill_plan import Job, Request, Span, dated, plan, skip_reason, step_problem
from okrsync.measure.measurer import Measurer, as_query
from okrsync.progress.definitions import Definitions, from_config
from okrsync.progress.maths import Observation
from okrsync.progress.periods import resolve
from okrsync.progress.status import assess
from okrsync.store import backfilled
from okrsync.store.store import Store
from okrsync.timefmt import utcnow

LATENCY = 0.25
"""Seconds one request is guessed to take, for the estimate of `--dry-run`."""

Progress = Callable[[int, int, int, int], None]
"""(points stored, points in all, requests done, requests in all); called from fetch
threads too."""


@dataclass
class KRReport:
    """One KR's line of the backfill report (`--json`: its `krs` entry)."""

    id: str
    points: int = 0
    written: int = 0
    skipped_existing: int = 0
    failed: list[tuple[datetime, str]] = field(default_factory=list)
    no_data: int = 0
    requests: int = 0
    skipped_reason: str | None = None
    estimate_s: float = 0.0
    superseded: int = 0
    done: bool = False
    """Stored (or, in a dry run, planned); False when an interrupt came first."""


@dataclass
class Backfill:
    """A planned backfill: its span, the KRs to measure and those skipped, the requests."""

    span: Span
    jobs: list[Job]
    reports: list[KRReport]
    requests: list[Request]
    replace: bool = False
    by_source: dict[str, int] = field(default_factory=dict)
    """Requests planned per source."""
    estimate_s: float = 0.0

    @property
    def points(self) -> int:
        return sum(len(j.instants) for j in self.jobs)


def chosen(config: Config, names: list[str], every: bool) -> list[KeyResult]:
    """The KRs named, or all with `--all`; unknown names and neither is exit 2."""
    krs = [kr for _, kr in config.key_results()]
    if not names and not every:
        raise UsageError("name the key results to backfill, or give --all")
    if names and every:
        raise UsageError("give key results or --all, not both")
    if every:
        return krs
    known = {kr.id: kr for kr in krs}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(
            f"unknown key result(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    return [known[n] for n in dict.fromkeys(names)]


def span_of(
    config: Config, start: datetime | None, end: datetime | None, step: float, now: datetime
) -> Span:
    """The span asked for, within the period and not after `now` (exit 2 otherwise)."""
    period = config.period
    last = min(now, period.ends_at - timedelta(microseconds=1))
    if now < period.starts_at:
        raise UsageError(
            f"the period {period.name} starts on {period.start}: there is nothing to "
            "backfill before it"
        )
    start = start or period.starts_at
    end = end or last
    if start < period.starts_at and start.astimezone(UTC).date() == period.start:
        start = period.starts_at  # the first day as a date, west of UTC: the period's start
    if start < period.starts_at:
        raise UsageError(
            f"--from {start:%Y-%m-%d %H:%M} UTC is before the period {period.name} starts "
            f"({period.starts_at:%Y-%m-%d %H:%M} UTC): backfill fills the configured period only"
        )
    if end > last:
        raise UsageError(
            f"--to {end:%Y-%m-%d %H:%M} is after "
            + ("now" if last == now else f"the period {period.name} ends ({period.end})")
            + ": there is nothing to measure there yet"
        )
    if start > end:
        raise UsageError(f"--from {start:%Y-%m-%d %H:%M} is after --to {end:%Y-%m-%d %H:%M}")
    return Span(start, end, timedelta(seconds=step), period.start)


def prepare(
    config: Config,
    reader: Store | None,
    krs: list[KeyResult],
    span: Span,
    *,
    explicit: bool,
    replace: bool = False,
    measurer: Measurer | None = None,
) -> Backfill:
    """Which of `krs` can be backfilled over `span`, which instants each still lacks, and
    the requests that costs. `explicit` (the KRs were named): one that cannot be
    backfilled is exit 2 with the reason; otherwise it is reported as skipped."""
    first_day = f"{span.start:%Y-%m-%d}"
    jobs: list[Job] = []
    reports: list[KRReport] = []
    for kr in krs:
        reason = skip_reason(config, kr, first_day)
        problem = None if reason else step_problem(config, kr, span.step)
        if problem is not None or (reason is not None and explicit):
            raise UsageError(f"cannot backfill {kr.id}: {problem or reason}")
        report = KRReport(kr.id, skipped_reason=reason)
        reports.append(report)
        if reason is not None:
            continue
        instants = span.instants(dated=dated(config, kr))
        report.points = len(instants)
        taken = (
            backfilled.existing(reader, kr.id, instants, span.step, live_only=replace)
            if reader is not None
            else set()
        )
        todo = [at for at in instants if at not in taken]
        report.skipped_existing = len(instants) - len(todo)
        jobs.append(Job(kr, todo, skipped_existing=report.skipped_existing))
    requests = plan(config, jobs, span)
    out = Backfill(span, jobs, reports, requests, replace)
    _cost(out, measurer)
    return out


def _cost(bf: Backfill, measurer: Measurer | None) -> None:
    """Requests per KR (a shared request is counted for the first KR that needs it) and
    per source, and the time they are estimated to take: a rate-limited request takes
    its source's pace (concurrency does not help), any other LATENCY, `max_concurrency`
    at a time. Sources are asked in parallel, so the whole takes the slowest source's."""
    counted: set[int] = set()
    by_id = {r.id: r for r in bf.reports}
    per_source_s: dict[str, float] = {}
    for job in bf.jobs:
        report = by_id[job.kr.id]
        for request in job.requests():
            if id(request) in counted:
                continue
            counted.add(id(request))
            report.requests += request.cost
            bf.by_source[request.source] = bf.by_source.get(request.source, 0) + request.cost
            pace = _pace(measurer, request)
            width = (
                1 if measurer is None else measurer.config.sources[request.source].max_concurrency
            )
            seconds = request.cost * (pace if pace else LATENCY / width)
            report.estimate_s += seconds
            per_source_s[request.source] = per_source_s.get(request.source, 0.0) + seconds
    bf.estimate_s = max(per_source_s.values(), default=0.0)


def _pace(measurer: Measurer | None, request: Request) -> float:
    """Seconds between two requests that the source's own rate limits allow (0: none)."""
    if measurer is None:
        return 0.0
    try:
        conn = measurer.connector(request.source)
    except (OkrsyncError, OSError, ValueError, TypeError):
        return 0.0
    pace = getattr(conn, "pace", None)
    if not callable(pace):
        return 0.0
    try:
        return float(pace(as_query(measurer.config, request.source, request.fields)))
    except (OkrsyncError, OSError, ValueError, TypeError):
        return 0.0


def execute(
    config: Config,
    store: Store,
    bf: Backfill,
    measurer: Measurer,
    now: datetime,
    *,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    commit: str | None = None,
) -> str | None:
    """Fetch and store the planned backfill, KR by KR, each in its own transaction; stop
    between KRs when `stop` is set (the KRs stored stay). The run's id (None: no KR had
    anything to do)."""
    stop = stop or threading.Event()
    by_id = {r.id: r for r in bf.reports}
    todo = [j for j in bf.jobs if j.instants]
    for job in bf.jobs:
        if not job.instants:
            by_id[job.kr.id].done = True
    if not todo:
        return None
    defs = resolve(from_config(config), store, now)
    run_id = uuid.uuid4().hex[:16]
    with store.transaction():
        # wall time: plan's baseline and the run list order runs by when they ran
        store.start_run(run_id, "backfill", utcnow(), config.digest, commit)
        store.know_period(config, now)  # applies no config: plan still shows all it would
    done_points, total, calls = 0, bf.points, len(bf.requests)

    def tick() -> None:
        if progress:
            progress(done_points, total, fetcher.done, calls)

    fetcher = Fetcher(config, measurer, on_done=tick, stop=stop)
    fetcher.submit(bf.requests)
    try:
        with backfilled.bulk(store):
            for job in todo:
                if not fetcher.wait(job):
                    break
                _store_one(config, store, bf, job, defs, run_id, by_id[job.kr.id])
                done_points += len(job.instants)
                tick()
    except BaseException:  # a store error: the requests still queued are not waited for
        fetcher.close(cancel=True)
        raise
    fetcher.close(cancel=stop.is_set())
    return run_id


def _store_one(
    config: Config,
    store: Store,
    bf: Backfill,
    job: Job,
    defs: Definitions,
    run_id: str,
    report: KRReport,
) -> None:
    """Assess one KR's answered points as of their instants and store them in one
    transaction (with `--replace`, superseding its older backfilled points)."""
    result = outcome(job, utcnow())
    kr_def = defs.kr(job.kr.id)
    rows = []
    for m in result.rows:
        assessed = assess(defs, kr_def, m, Observation()) if kr_def else m
        if assessed.value is None:  # e.g. `start: previous` without a baseline
            result.failed.append((m.measured_at, assessed.error or "no value"))
        else:
            rows.append(assessed)
    with store.transaction():
        if bf.replace:
            span = bf.span.instants(dated=dated(config, job.kr))
            keep = [at for at, _ in result.failed]
            report.superseded = backfilled.supersede(store, job.kr.id, span, bf.span.step, keep)
        store.append_many(run_id, rows, config.period.name)
        backfilled.update_run(store, run_id, utcnow(), len(rows), len(result.failed))
    report.written, report.failed, report.no_data = len(rows), result.failed, result.gaps
    report.done = True
