"""An SLO KR's measurement, from the fetches of its planned queries."""

from __future__ import annotations

from datetime import datetime

from okrsync.config.model import KeyResult, Period
from okrsync.measure.measurement import Measurement
from okrsync.measure.plan import Fetch
from okrsync.measure.slo_queries import window_text
from okrsync.measure.slo_reading import SloProblem, reading


def slo_measurement(
    kr: KeyResult, wanted: list[tuple[str | None, Fetch]], period: Period, now: datetime
) -> Measurement:
    """The KR's measurement from its fetched queries: the SLI as its value, every count as
    its inputs, or the error of a failed query (one that matched nothing counts 0)."""
    assert kr.slo is not None
    rendered = window_text(kr.slo, period, now)
    asked = "; ".join(f"{name} = {fetch.source}: {fetch.text}" for name, fetch in wanted)
    shown = kr.slo.window if kr.slo.rolling else f"{kr.slo.window} ({rendered})"
    query = f"slo {kr.slo.objective:g}% over {shown}: {asked}"
    source = str(kr.source)
    failed: dict[str, list[str]] = {}
    values: dict[str, float] = {}
    for name, fetch in wanted:
        if fetch.error and not fetch.no_data:
            failed.setdefault(fetch.error, []).append(str(name))
        else:
            values[str(name)] = fetch.reading.value if fetch.reading else 0.0
    if failed:
        error = _failures(failed, len(wanted))
        return Measurement(kr.id, now, source, query, inputs=values or None, error=error)
    try:
        found = reading(kr.slo, values, rendered)
    except SloProblem as exc:
        return Measurement(kr.id, now, source, query, inputs=values, error=f"slo: {exc}")
    return Measurement(kr.id, now, source, query, value=found.sli, inputs=values, slo=found)


def _failures(failed: dict[str, list[str]], asked: int) -> str:
    """`total@6h: <error>`, or `all 10 queries: <error>` when one error failed them all."""
    if len(failed) == 1 and len(next(iter(failed.values()))) == asked > 1:
        return f"all {asked} queries: {next(iter(failed))}"
    return "; ".join(f"{', '.join(names)}: {error}" for error, names in failed.items())
