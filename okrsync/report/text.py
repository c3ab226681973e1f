"""Words and numbers both renderings share: values, percentages, bars, the forecast line."""

from __future__ import annotations

import math
from datetime import datetime

from okrsync.numfmt import number
from okrsync.progress.maths import clamp, kr_progress
from okrsync.report.forecast import Forecast, too_short
from okrsync.report.model import KRReport, Report

LABEL = {
    "done": "done",
    "on_track": "on track",
    "at_risk": "at risk",
    "off_track": "off track",
    "stale": "stale",
    "no_data": "no data",
}
SPARKS = "▁▂▃▄▅▆▇█"


def percent(progress: float | None) -> str:
    """`63%` (rounded half up, capped far past the target); a dash without data."""
    if progress is None or not math.isfinite(progress):
        return "–"
    shown = max(-(10**9), min(10**9, math.floor(progress * 100 + 0.5 + 1e-9)))
    return f"{shown}%"


def bar(progress: float | None, width: int = 10) -> str:
    """`█████░░░░░` for a progress in [0, 1]; dots without data."""
    if progress is None:
        return "·" * width
    filled = round(clamp(progress) * width)
    return "█" * filled + "░" * (width - filled)


def spark(k: KRReport, width: int = 12) -> str:
    """The series' progress as a text sparkline (0 to 100% of the way to the target)."""
    kr = k.view.kr
    start = kr.start  # progress against today's start and target, as the bars and charts
    found = [
        kr_progress(p.value, start, kr.target) if start is not None else p.progress
        for p in k.points
    ]
    values = [v for v in found if v is not None]
    if not values:
        return ""
    if len(values) > width:  # evenly spaced picks, the first and the latest among them
        values = [values[round(i * (len(values) - 1) / (width - 1))] for i in range(width)]
    picked = values
    return "".join(SPARKS[round(clamp(v) * (len(SPARKS) - 1))] for v in picked)


def no_values(report: Report) -> str | None:
    """Why a report shows no value at all (a period not begun, or nothing measured in
    it), or None when some key result shown has one."""
    krs = report.key_results()
    if not krs or any(k.view.obs.value is not None for k in krs):
        return None
    tree = report.tree
    period = tree.defs.period
    if tree.now < period.starts_at:
        return f"{period.name} begins {period.start}: no values yet."
    if tree.ended:
        return f"No value was recorded in {period.name}."
    return f"No values in {period.name} yet: nothing measured or checked in so far."


def when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def goal(k: KRReport) -> str:
    kr = k.view.kr
    start = "previous" if kr.start is None else number(kr.start)
    return f"{start} → {number(kr.target, kr.unit)}"


def outlook(k: KRReport) -> str:
    """`99.8 % (89%) by 2026-12-31, from 14 values` or why there is no forecast."""
    f = k.forecast
    if not isinstance(f, Forecast):
        return f
    kr = k.view.kr
    progress = (
        "" if kr.start is None else f" ({percent(kr_progress(f.value, kr.start, kr.target))})"
    )
    said = f"{number(f.value, kr.unit)}{progress} at the end, from {f.points} values"
    return said if f.short is None else f"{said}, {too_short(f)}"


def change(k: KRReport) -> tuple[str, str, str]:
    """(value, progress, status) then → now."""
    then, now = k.then, k.view
    unit = now.kr.unit
    before = (
        (None, None, "no_data") if then is None else (then.obs.value, then.progress, then.status)
    )
    value = f"{number(before[0], unit)} → {number(now.obs.value, unit)}"
    progress = f"{percent(before[1])} → {percent(now.progress)}"
    if before[1] is not None and now.progress is not None:
        delta = round((now.progress - before[1]) * 100)
        progress += f" ({delta:+d})"
    status = LABEL[before[2]]
    status = status if before[2] == now.status else f"{status} → {LABEL[now.status]}"
    return value, progress, status
