"""Planning a backfill: which KRs can be measured for past instants, at which instants,
and the distinct requests that costs.

A source that evaluates any instant over a span in one request (a RangeConnector, i.e.
Prometheus) can always be backfilled; any other only when its query names the day with
`{now}`, one request per day. Knows OKRs and the connector interface, nothing of HTTP.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from okrsync.config import plugins, templating
from okrsync.config.loader import Config
from okrsync.config.model import KeyResult, Measure
from okrsync.connector import Reading
from okrsync.measure.plan import describe, query_fields

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Span:
    """The instants asked for: `start`, then every `step`, up to and including `end`."""

    start: datetime
    end: datetime
    step: timedelta
    first_day: date | None = None
    """The period's first date: no dated point is for a day before it."""

    def instants(self, *, dated: bool = False) -> list[datetime]:
        """The span's instants; `dated` (sources whose `{now}` is a date): one per day D,
        every `step` from the first midnight UTC at or after `start`, at D 00:00 UTC. The
        period's first day is the exception: a period west of UTC starts hours after that
        midnight, so its point is taken at `start`; and a day before `first_day` (a period
        east of UTC starts on the UTC day before) is not the period's."""
        first = self.start
        if dated:
            day = self.start.astimezone(UTC).date()
            if self.first_day is not None and day < self.first_day:
                day = self.first_day
            first = datetime.combine(day, time(), UTC)
            if first < self.start and day != self.first_day:
                first += DAY  # that day began before the span: the next one is the first
        out: list[datetime] = []
        at = first
        while at <= self.end:
            out.append(max(at, self.start))
            at += self.step
        return out


@dataclass
class Request:
    """One distinct request of a backfill and what it answered: a span of instants of one
    range query, or one day of a `{now}` query. Shared by every KR that needs it."""

    source: str
    fields: dict[str, Any]
    instants: list[datetime]
    ranged: bool
    step: timedelta
    readings: dict[datetime, Reading] = field(default_factory=dict)
    errors: dict[datetime, str] = field(default_factory=dict)
    """Instants that gave an error (a failed request fails all of its instants)."""
    duration_s: float | None = None
    max_points: int | None = None
    """Instants one range request of its source asks at most (None: no limit)."""

    @functools.cached_property
    def text(self) -> str:
        return describe(self.fields)

    @property
    def cost(self) -> int:
        """Requests it takes: a range query is split past its source's `max_points`."""
        if not self.ranged or not self.max_points:
            return 1
        return math.ceil(len(self.instants) / self.max_points)


@dataclass
class Job:
    """One KR's backfill: its instants still to measure and, per input (None: the KR's
    own query), the request that answers each instant."""

    kr: KeyResult
    instants: list[datetime]
    wants: list[tuple[str | None, str, dict[datetime, Request]]] = field(default_factory=list)
    """(input name, source, instant -> request) per measure of the KR."""
    skipped_existing: int = 0

    def requests(self) -> list[Request]:
        """The distinct requests this KR waits for (some may be shared with other KRs)."""
        seen: dict[int, Request] = {}
        for _, _, by_instant in self.wants:
            for request in by_instant.values():
                seen.setdefault(id(request), request)
        return list(seen.values())


def measures(kr: KeyResult) -> list[tuple[str | None, Measure]]:
    """The measures a KR's value comes from: its inputs (formula) or itself."""
    return list(kr.inputs.items()) if kr.formula else [(None, kr)]


def _uses_now(measure: Measure) -> bool:
    text = json.dumps(measure.query_fields(), default=str)
    return "now" in templating.PLACEHOLDER.findall(text)


def ranged(config: Config, source: str) -> bool:
    """Whether the source's connector evaluates a span in one request (fetch_range)."""
    cls = plugins.plugin(config.sources[source].type).cls
    return callable(getattr(cls, "fetch_range", None))


def _range_limit(config: Config, source: str) -> int | None:
    """The most instants one range request of the source asks (None: no limit)."""
    cls = plugins.plugin(config.sources[source].type).cls
    limit = getattr(cls, "max_range_points", None)
    return int(limit) if limit else None


def dated(config: Config, kr: KeyResult) -> bool:
    """Whether the KR is measured per day (some measure of it has no range source)."""
    return any(not ranged(config, str(m.source)) for _, m in measures(kr))


def skip_reason(config: Config, kr: KeyResult, first_day: str) -> str | None:
    """Why `kr` cannot be backfilled (None: it can). `first_day` names the span's start."""
    if kr.is_manual:
        return "manual key result: its values are check-ins, there is no source to ask"
    if kr.slo is not None:
        return (
            "SLO key result: backfill does not ask SLO queries over the past yet (its "
            "window and burn windows move with each instant); live measurements keep its history"
        )
    for name, measure in measures(kr):
        source = str(measure.source)
        if ranged(config, source) or _uses_now(measure):
            continue
        kind = config.sources[source].type
        cls = plugins.plugin(kind).cls
        hint = str(getattr(cls, "as_of_hint", "name the day with {now} in the query"))
        reason = (
            f"{kind} query has no {{now}}: today's answer says nothing about {first_day} ({hint})"
        )
        return f"input {name}: {reason}" if name else reason
    return None


def step_problem(config: Config, kr: KeyResult, step: timedelta) -> str | None:
    """Why `step` cannot be used for `kr` (None: it can): a `{now}` is a date."""
    if step % DAY == timedelta(0) or not dated(config, kr):
        return None
    kinds = sorted({config.sources[str(m.source)].type for _, m in measures(kr)})
    return (
        f"--step must be whole days for {kr.id}: its {'/'.join(kinds)} query's {{now}} is a "
        "date, so it can only be asked once per day (use e.g. --step 1d)"
    )


def fields_at(config: Config, measure: Measure, at: datetime, *, ranged: bool) -> dict[str, Any]:
    """The measure's query fields as of `at`: a range source's as a live measurement at
    that instant has them (`{now}`: the date in the period's timezone); a dated source's
    with `{now}` = the UTC date whose point `at` is."""
    if ranged:
        return query_fields(config, measure, at)
    period = config.period
    values = templating.variables(period.name, period.start, period.end, at.astimezone(UTC).date())
    rendered: dict[str, Any] = templating.render(measure.query_fields(), values)
    return rendered


def _regular(instants: list[datetime], step: timedelta) -> list[list[datetime]]:
    """`instants` cut where they are not one `step` apart (a range request asks start +
    k*step; a period's first point taken at its start is off that grid)."""
    runs: list[list[datetime]] = []
    for at in instants:
        if runs and at - runs[-1][-1] == step:
            runs[-1].append(at)
        else:
            runs.append([at])
    return runs


def plan(config: Config, jobs: list[Job], span: Span) -> list[Request]:
    """Fill each job's `wants` with the requests its instants need; identical requests
    (same source and rendered query over the same instants) are planned once. A range
    query costs one request over every instant of the span it renders the same for,
    whatever each KR still lacks, so KRs sharing it share the request."""
    requests: dict[str, Request] = {}
    for job in jobs:
        if not job.instants:
            continue
        grid = span.instants(dated=dated(config, job.kr))
        for name, measure in measures(job.kr):
            source = str(measure.source)
            is_ranged = ranged(config, source)
            limit = getattr(
                plugins.plugin(config.sources[source].type).cls, "max_range_points", None
            )
            by_instant: dict[datetime, Request] = {}
            groups: dict[str, list[datetime]] = {}
            rendered: dict[str, dict[str, Any]] = {}
            daily = _uses_now(measure)  # else one rendering fits every instant
            instants = grid if is_ranged else job.instants
            for at in instants if daily else instants[:1]:
                fields = fields_at(config, measure, at, ranged=is_ranged)
                key = json.dumps([source, fields], sort_keys=True, default=str)
                groups.setdefault(key, []).append(at)
                rendered[key] = fields
            if not daily:
                groups = {key: list(instants) for key in groups}
            wanted = set(job.instants)
            runs = [
                (key, run)
                for key, group in groups.items()
                for run in (_regular(group, span.step) if is_ranged else [group])
            ]
            for key, instants in runs:
                if not wanted.intersection(instants):
                    continue
                span_key = json.dumps([key, instants[0].isoformat(), instants[-1].isoformat()])
                if not is_ranged:
                    span_key = json.dumps([key, "day", instants[0].isoformat()])
                request = requests.setdefault(
                    span_key,
                    Request(
                        source, rendered[key], instants, is_ranged, span.step, max_points=limit
                    ),
                )
                for at in instants:
                    if at in wanted:
                        by_instant[at] = request
            job.wants.append((name, source, by_instant))
    return list(requests.values())
