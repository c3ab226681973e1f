"""An SLO KR's explanation: each query with its rendered window and count, and the SLI,
budget and burn-rate arithmetic written out (part of `okrsync explain`)."""

from __future__ import annotations

import re
from typing import Any

from okrsync.measure.slo_reading import budget_spent, error_budget
from okrsync.progress.definitions import SloTarget
from okrsync.progress.maths import Observation
from okrsync.review.stored_query import named_queries

_NAME = re.compile(r"((?:good|errors|total)(?:@[0-9.smhdw]+)?) = ")


def num(value: float) -> str:
    """A number as written in the arithmetic: 999600, 0.001, 99.96."""
    return f"{value:.10g}"


def queries(stored: str) -> dict[str, dict[str, str]]:
    """The stored query text `slo 99.9% over period: good = SOURCE: Q; total = ...` as
    {name: {source, query}}."""
    found = named_queries(stored.partition(": ")[2], _NAME)
    return {n: {"source": source, "query": query} for n, (source, query) in found.items()}


def slo_part(row: dict[str, Any]) -> dict[str, Any] | None:
    """What an SLO measurement was computed from, and how (None for other KRs)."""
    query = row.get("query") or ""
    if not query.startswith("slo "):
        return None
    reading: dict[str, Any] | None = row.get("slo")
    counts: dict[str, float] = row.get("inputs") or {}
    head = query.partition(": ")[0]  # `slo 99.9% over period (3931200s)` or `... over 28d`
    written = re.search(r"over (\S+)(?: \((\S+)\))?$", head)
    rendered = reading["rendered_window"] if reading else None
    if rendered is None and written:
        rendered = written.group(2) or written.group(1)
    asked = [
        {
            "name": name,
            "window": name.partition("@")[2] or rendered,
            "source": q["source"],
            "query": q["query"],
            "count": counts.get(name),
        }
        for name, q in queries(query).items()
    ]
    out: dict[str, Any] = {"queries": asked, "reading": reading, "arithmetic": None}
    if reading is not None:
        out["arithmetic"] = _arithmetic(reading, counts)
    return out


def _arithmetic(r: dict[str, Any], counts: dict[str, float]) -> dict[str, Any]:
    objective, budget = r["objective"], error_budget(r["objective"])
    errors = "errors" in counts
    good = (
        f"good = total - errors = {num(counts['total'])} - {num(counts['errors'])} "
        f"= {num(r['good'])}; "
        if errors
        else ""
    )
    sli = f"{good}SLI = 100 x good / total = 100 x {num(r['good'])} / {num(r['total'])}"
    out: dict[str, Any] = {
        "sli": f"{sli} = {num(r['sli'])}",
        "error_budget": f"1 - {num(objective)}/100 = {num(budget)}",
        "error_budget_remaining": f"1 - (1 - {num(r['sli'])}/100) / {num(budget)} "
        f"= {num(r['error_budget_remaining'])}",
        "burn_rates": {},
        "alerts": [],
    }
    for window, rate in r["burn_rates"].items():
        total = counts.get(f"total@{window}", 0.0)
        if rate is None:
            out["burn_rates"][window] = f"no events in {window} (total = {num(total)}): no rate"
            continue
        part = f"errors@{window}" if errors else f"good@{window}"
        ratio = (
            f"{num(counts.get(part, 0.0))} / {num(total)}"
            if errors
            else f"(1 - {num(counts.get(part, 0.0))} / {num(total)})"
        )
        out["burn_rates"][window] = f"{ratio} / {num(budget)} = {num(rate)}"
    firing = {(a["long"], a["short"]) for a in r["alerts_firing"]}
    for pair in r.get("burn_alerts") or r["alerts_firing"]:
        long, short = pair["long"], pair["short"]
        rates = ", ".join(f"{w} {_rate(r['burn_rates'].get(w))}" for w in (long, short))
        verdict = "firing" if (long, short) in firing else "not firing"
        out["alerts"].append(f"{long}/{short}: {rates}; both >= {num(pair['factor'])}? {verdict}")
    return out


def _rate(rate: float | None) -> str:
    return "no events" if rate is None else num(rate)


def slo_rule(slo: SloTarget, obs: Observation, status: str, expected: float) -> str | None:
    """The budget rule that gave an SLO KR its status (None: no value, stale: as any KR)."""
    if obs.value is None or status in ("no_data", "stale"):
        return None
    sli, objective = obs.value, slo.objective
    spent = budget_spent(sli, objective)
    if status == "off_track":
        return f"off_track: SLI {num(sli)} < objective {num(objective)}: the error budget is spent"
    if status == "done":
        return f"done: the period has ended with SLI {num(sli)} >= objective {num(objective)}"
    reading = obs.slo_shown
    if reading is not None and reading.alerts_firing:
        pairs = ", ".join(f"{a['long']}/{a['short']}" for a in reading.alerts_firing)
        return f"at_risk: burn alert {pairs} firing (both windows burn at or above its factor)"
    if status == "at_risk":
        return (
            f"at_risk: {num(spent)} of the error budget spent > {num(expected)} of the period "
            "elapsed"
        )
    pace = (
        " (a rolling window: not compared with the period elapsed)"
        if slo.rolling
        else f" <= {num(expected)} of the period elapsed"
    )
    return (
        f"on_track: SLI {num(sli)} >= objective {num(objective)}, no burn alert firing, "
        f"{num(spent)} of the error budget spent{pace}"
    )
