"""An SLO key result's part of the report: its objective, SLI, error budget and burn
status, in the words both renderings show next to the KR's progress."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from okrsync.config.slo import seconds
from okrsync.progress.tree import KRView

MINUS = "\u2212"
MAX_DIGITS = 6  # SLI decimals at most: past this the difference from the objective is noise


@dataclass(frozen=True)
class Firing:
    """A burn-alert pair firing: both windows burn at `factor` or faster."""

    long: str
    short: str
    factor: float
    rate: float | None
    """The slower of the pair's two burn rates: both windows burn at least this fast."""

    @property
    def name(self) -> str:
        return f"{self.long}/{self.short}"


@dataclass(frozen=True)
class SloPart:
    """What the report shows of an SLO KR's latest reading."""

    objective: float
    window: str
    sli: float
    budget: float
    """Error budget remaining: 1 untouched, 0 spent, negative breached (shown as is)."""
    burn_rates: tuple[tuple[str, float | None], ...]
    """(burn window, rate) shortest window first; None: no events in it."""
    firing: tuple[Firing, ...]

    @property
    def breached(self) -> bool:
        return self.budget < 0


def slo_part(view: KRView) -> SloPart | None:
    """The SLO part of a KR: None for a KR without an SLO, before its first reading, or
    while a check-in override holds the value (a typed value has no budget or burn)."""
    reading = view.obs.slo_shown
    if view.kr.slo is None or reading is None:
        return None
    rates = reading.burn_rates
    firing = tuple(
        Firing(str(a["long"]), str(a["short"]), float(a["factor"]), _slower(rates, a))
        for a in reading.alerts_firing
    )
    return SloPart(
        objective=view.kr.slo.objective,
        window=view.kr.slo.window,
        sli=reading.sli,
        budget=reading.error_budget_remaining,
        burn_rates=tuple(sorted(rates.items(), key=lambda item: seconds(item[0]))),
        firing=firing,
    )


def _slower(rates: Mapping[str, float | None], alert: Mapping[str, Any]) -> float | None:
    pair = [rates.get(str(alert[w])) for w in ("long", "short")]
    known = [r for r in pair if r is not None]
    return min(known) if len(known) == 2 else None


def _decimals(value: float) -> int:
    text = f"{value:.{MAX_DIGITS}f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


def sli_text(part: SloPart) -> str:
    """`99.95%`: one digit past the objective's, more while rounding would hide which side
    of the objective (or of 100%) the SLI is on."""
    sli, objective = part.sli, part.objective
    if not math.isfinite(sli):
        return f"{sli}%"
    digits = _decimals(objective) + 1
    while digits < MAX_DIGITS:
        shown = round(sli, digits)
        same_side = (shown > objective) == (sli > objective) and (shown < objective) == (
            sli < objective
        )
        if same_side and (shown < 100) == (sli < 100):
            break
        digits += 1
    text = f"{sli:.{digits}f}".rstrip("0").rstrip(".")
    return f"{text}%"


def objective_text(part: SloPart) -> str:
    """`SLO 99.9% (period)` or `SLO 99% (28d)`."""
    return f"SLO {part.objective:g}% ({part.window})"


def budget_percent(budget: float) -> str:
    """`60%`, `0.4%`, `-120%` (with a real minus sign, U+2212): rounded, one decimal
    under 1% so a sliver is not 0."""
    if not math.isfinite(budget):
        return f"{budget}"
    shown = budget * 100
    size = abs(shown)
    text = f"{size:.1f}" if 0 < size < 0.95 else f"{math.floor(size + 0.5):,}"
    return f"{MINUS if shown < 0 else ''}{text}%"


def budget_text(part: SloPart) -> str:
    """`budget 60% left`, or `budget -120% (breached)` once spent past zero."""
    if part.breached:
        return f"budget {budget_percent(part.budget)} (breached)"
    return f"budget {budget_percent(part.budget)} left"


def rate_text(rate: float | None) -> str:
    """`0.4x`; a dash for a window without events."""
    if rate is None or not math.isfinite(rate):
        return "–" if rate is None else f"{rate}x"
    return f"{rate:,.1f}x"


def rates_text(part: SloPart, sep: str = ", ") -> str:
    """`5m 0.1x, 1h 0.4x`: every burn window's rate, shortest first."""
    return sep.join(f"{w} {rate_text(r)}" for w, r in part.burn_rates)


def firing_text(part: SloPart, *, fast: bool) -> str:
    """`1h/5m at 20.1x (alert ≥ 14.4x)` per firing pair (`1h/5m at 20.1x ≥ 14.4x` short)."""
    if fast:
        said = [f"{f.name} at {rate_text(f.rate)} (alert ≥ {f.factor:g}x)" for f in part.firing]
    else:
        said = [f"{f.name} at {rate_text(f.rate)} ≥ {f.factor:g}x" for f in part.firing]
    return "; ".join(said)


def burn_text(part: SloPart) -> str:
    """`burning: 1h/5m at 20.1x ≥ 14.4x` while a pair fires, else `burn ok (1h 0.4x, ...)`."""
    if part.firing:
        return f"burning: {firing_text(part, fast=False)}"
    rates = rates_text(part)
    return f"burn ok ({rates})" if rates else "no burn rates (its queries have no {window})"


def slo_line(part: SloPart) -> str:
    """`SLO 99.9% (period): SLI 99.95% · budget 50% left · burn ok (1h 0.4x, 6h 0.2x)`."""
    return f"{objective_text(part)}: SLI {sli_text(part)} · {budget_text(part)} · {burn_text(part)}"
