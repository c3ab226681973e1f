"""An SLO KR's reading: SLI, error budget and burn rates from its event counts.

The SLI is a ratio of sums over the window, never an average of ratios.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from okrsync.config.slo import Slo

TOLERANCE = 1e-9
"""Relative slack for good > total: sums of the same samples in another order differ in
their last bits, which is rounding, not wrong queries."""


@dataclass(frozen=True)
class SloReading:
    """An SLO KR's measurement beyond its value (the SLI, in percent)."""

    objective: float
    window: str
    """As configured: `period` or a rolling window such as `28d`."""
    rendered_window: str
    """What `{window}` was for the SLO window (`4838400s`, `28d`)."""
    sli: float
    good: float
    total: float
    error_budget_remaining: float
    burn_rates: dict[str, float | None] = field(default_factory=dict)
    """Burn rate per burn window (None: no events in it)."""
    alerts_firing: tuple[dict[str, Any], ...] = ()
    """The firing burn-alert pairs: {long, short, factor}."""
    burn_alerts: tuple[dict[str, Any], ...] = ()
    """Every burn-alert pair it was judged by, firing or not (what explain shows)."""

    def against(self, objective: float) -> SloReading:
        """This reading judged against another objective (the config's changed since it was
        measured): its budget, burn rates and firing pairs as that objective gives them."""
        if objective == self.objective:
            return self
        old, new = error_budget(self.objective), error_budget(objective)
        rates = {w: None if r is None else r * old / new for w, r in self.burn_rates.items()}
        return dataclasses.replace(
            self,
            objective=objective,
            error_budget_remaining=1 - budget_spent(self.sli, objective),
            burn_rates=rates,
            alerts_firing=_firing(self.burn_alerts, rates),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "window": self.window,
            "rendered_window": self.rendered_window,
            "sli": self.sli,
            "good": self.good,
            "total": self.total,
            "error_budget_remaining": self.error_budget_remaining,
            "burn_rates": dict(self.burn_rates),
            "alerts_firing": [dict(a) for a in self.alerts_firing],
            "burn_alerts": [dict(a) for a in self.burn_alerts],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SloReading:
        return cls(
            objective=float(data["objective"]),
            window=str(data["window"]),
            rendered_window=str(data.get("rendered_window", data["window"])),
            sli=float(data["sli"]),
            good=float(data["good"]),
            total=float(data["total"]),
            error_budget_remaining=float(data["error_budget_remaining"]),
            burn_rates={str(k): v for k, v in dict(data.get("burn_rates") or {}).items()},
            alerts_firing=tuple(dict(a) for a in data.get("alerts_firing") or ()),
            burn_alerts=tuple(dict(a) for a in data.get("burn_alerts") or ()),
        )


class SloProblem(ValueError):
    """The counts cannot give an SLI (no events, good above total): the KR's error."""


def _good_and_total(slo: Slo, values: Mapping[str, float], suffix: str) -> tuple[float, float]:
    """Good and total events of one window; SloProblem when they are not counts."""
    name = ("errors" if slo.counts_errors else "good") + suffix
    part, total = values[name], values["total" + suffix]
    what = f"{name} = {part:g}, total{suffix} = {total:g}"
    if not all(math.isfinite(v) and v >= 0 for v in (part, total)):
        raise SloProblem(f"event counts must be finite and not negative ({what})")
    if part > total * (1 + TOLERANCE):
        side = "errors" if slo.counts_errors else "good"
        raise SloProblem(f"{side} > total: check the queries ({what})")
    part = min(part, total)
    return (total - part if slo.counts_errors else part), total


def error_budget(objective: float) -> float:
    """The fraction of events that may be bad: 1 - objective/100."""
    return 1 - objective / 100


def budget_spent(sli: float, objective: float) -> float:
    """The fraction of the error budget an SLI has spent: above 1 once breached."""
    return (1 - sli / 100) / error_budget(objective)


def _firing(
    pairs: tuple[dict[str, Any], ...], rates: Mapping[str, float | None]
) -> tuple[dict[str, Any], ...]:
    """The burn-alert pairs whose long and short windows both burn at their factor or more."""
    return tuple(
        p
        for p in pairs
        if all(_at_least(rates.get(str(p[w])), float(p["factor"])) for w in ("long", "short"))
    )


def _at_least(rate: float | None, factor: float) -> bool:
    return rate is not None and rate >= factor


def reading(slo: Slo, values: Mapping[str, float], rendered_window: str) -> SloReading:
    """SLI, budget and burn rates from the fetched values (a query with no series counts
    0); SloProblem when the SLO window has no events or the counts contradict."""
    assert slo.objective is not None
    good, total = _good_and_total(slo, values, "")
    if total == 0:
        raise SloProblem("no events in the window (total = 0)")
    budget = error_budget(slo.objective)
    sli = 100 * good / total
    rates: dict[str, float | None] = {}
    if all(f"total@{w}" in values for w in slo.burn_windows()):
        for window in slo.burn_windows():
            good_w, total_w = _good_and_total(slo, values, f"@{window}")
            rates[window] = None if total_w == 0 else (1 - good_w / total_w) / budget
    alerts = slo.burn_alerts if rates else ()
    pairs = tuple({"long": a.long, "short": a.short, "factor": a.factor} for a in alerts)
    return SloReading(
        objective=slo.objective,
        window=slo.window,
        rendered_window=rendered_window,
        sli=sli,
        good=good,
        total=total,
        error_budget_remaining=1 - budget_spent(sli, slo.objective),
        burn_rates=rates,
        alerts_firing=_firing(pairs, rates),
        burn_alerts=pairs,
    )
