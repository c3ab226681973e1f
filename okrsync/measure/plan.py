"""Planning a run: which KRs to measure, and the distinct queries they need.

Identical queries (same source, same templated fields, same window) are planned once, so
KRs that share a query cost one request.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from okrsync.config import templating
from okrsync.config.loader import Config
from okrsync.config.model import KeyResult, Measure
from okrsync.connector import Reading, Window
from okrsync.errors import UsageError
from okrsync.measure import slo_queries


def select(config: Config, only: list[str] | None = None) -> list[KeyResult]:
    """The automated KRs to measure (all, or those named by `--only`); manual ones are skipped."""
    krs = [kr for _, kr in config.key_results()]
    if only:
        known = {kr.id for kr in krs}
        unknown = [k for k in only if k not in known]
        if unknown:
            raise UsageError(
                f"unknown key result(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        krs = [kr for kr in krs if kr.id in only]
    return [kr for kr in krs if not kr.is_manual]


def describe(fields: Mapping[str, Any]) -> str:
    """The exact query as people wrote it: the bare string when there is one field."""
    if len(fields) == 1:
        return str(next(iter(fields.values())))
    return json.dumps(dict(fields), sort_keys=True, default=str)


@dataclass
class Fetch:
    """One distinct query of a run, the KRs waiting for it, and its answer once fetched."""

    source: str
    fields: dict[str, Any]
    window: Window
    max_wait: float
    kr_ids: list[str] = field(default_factory=list)
    reading: Reading | None = None
    error: str | None = None
    no_data: bool = False
    """The error is that the query matched nothing."""
    empty_is_zero: bool = False
    """An SLO's query: matching nothing is 0 events, not a failure."""
    fetched_at: datetime | None = None
    """When the fetch finished (retries included), on the clock of the run's `now`."""
    finished: float | None = None
    """time.monotonic() when it finished (fetched_at is computed from it)."""
    duration_s: float | None = None
    """How long it took, retries and their waits included."""

    @property
    def text(self) -> str:
        return describe(self.fields)


@dataclass
class Plan:
    """The fetches of a run and, per KR, the (input name, fetch) pairs it is computed from."""

    fetches: list[Fetch]
    wants: dict[str, list[tuple[str | None, Fetch]]]


def query_fields(config: Config, measure: Measure, now: datetime) -> dict[str, Any]:
    """The measure's query fields with `{period.*}` and `{now}` filled in for `now`."""
    period = config.period
    today = now.astimezone(ZoneInfo(period.timezone)).date()
    values = templating.variables(period.name, period.start, period.end, today)
    rendered: dict[str, Any] = templating.render(measure.query_fields(), values)
    return rendered


def plan(config: Config, krs: list[KeyResult], now: datetime) -> Plan:
    """Every distinct query `krs` need as of `now`, each planned once."""
    window = Window(config.period.starts_at, config.period.ends_at)
    fetches: dict[str, Fetch] = {}
    wants: dict[str, list[tuple[str | None, Fetch]]] = {}
    at_now = replace(window, at=now)  # an SLO's queries all count up to one instant
    for kr in krs:
        measures: Iterable[tuple[str | None, Measure]] = (
            slo_queries.measures(config, kr, now)
            if kr.slo
            else kr.inputs.items()
            if kr.formula
            else [(None, kr)]
        )
        every = config.every_seconds(kr)
        asked = at_now if kr.slo else window
        for input_name, measure in measures:
            assert measure.source is not None
            fields = query_fields(config, measure, now)
            key = json.dumps(
                [measure.source, fields, asked.since, asked.until, asked.at],
                sort_keys=True,
                default=str,
            )
            fetch = fetches.setdefault(
                key, Fetch(measure.source, fields, asked, every, empty_is_zero=bool(kr.slo))
            )
            fetch.max_wait = min(fetch.max_wait, every)
            fetch.kr_ids.append(kr.id)
            wants.setdefault(kr.id, []).append((input_name, fetch))
    return Plan(list(fetches.values()), wants)
