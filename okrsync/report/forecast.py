"""The forecast of a KR's value at the period's end: a least-squares line through its
recent values, extended to the end. Pure arithmetic, no I/O.

The method, as the report states it: the line through the values of the last
WINDOW_DAYS days before the as-of moment (the newest MAX_POINTS at most); a KR with fewer
than 2 values there uses its last FALLBACK_POINTS values instead. No forecast with fewer
than 2 values, or values all taken at one instant; values all within MIN_SPAN of each
other are too close for a slope: the forecast is flat at their mean, and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from okrsync.store.series import Sums

WINDOW_DAYS = 14
MAX_POINTS = 1000
FALLBACK_POINTS = 10
MIN_SPAN = timedelta(minutes=10)
"""Values closer together than this give no trend worth extending to the period's end
(two check-ins a few seconds apart would forecast millions)."""
WINDOW = timedelta(days=WINDOW_DAYS)
METHOD = (
    f"least squares line through the values of the last {WINDOW_DAYS} days before the "
    f"as-of moment (the newest {MAX_POINTS:,} at most; with fewer than 2 there, the last "
    f"{FALLBACK_POINTS} values), extended to the period's end"
)


@dataclass(frozen=True)
class Line:
    """value = intercept + slope * x, x in days relative to the as-of moment."""

    slope: float
    intercept: float

    def at(self, x: float) -> float:
        return self.intercept + self.slope * x


@dataclass(frozen=True)
class Forecast:
    line: Line
    points: int
    starts: datetime
    """Where the fitted line starts (its oldest value)."""
    ends: datetime
    value: float
    """The line's value at `ends`, the period's end."""
    start_value: float
    short: timedelta | None = None
    """Set when the values span less than MIN_SPAN: too short a time for a slope, so the
    line is flat at their mean."""


def sums(points: Sequence[tuple[float, float]]) -> Sums:
    """The sums `fit` needs, from (x, y) points."""
    xs = [x for x, _ in points]
    return Sums(
        n=len(points),
        sx=sum(xs),
        sy=sum(y for _, y in points),
        sxx=sum(x * x for x in xs),
        sxy=sum(x * y for x, y in points),
        first=min(xs, default=0.0),
        last=max(xs, default=0.0),
    )


def fit(s: Sums) -> Line | None:
    """The least-squares line, or None for fewer than 2 points or no spread in x."""
    if s.n < 2:
        return None
    spread = s.n * s.sxx - s.sx * s.sx
    if abs(spread) <= 1e-12 * max(1.0, s.sxx * s.n):
        return None
    slope = (s.n * s.sxy - s.sx * s.sy) / spread
    return Line(slope, (s.sy - slope * s.sx) / s.n)


def forecast(s: Sums, as_of: datetime, ends_at: datetime) -> Forecast | str:
    """The value at `ends_at` the recent trend points to, or why there is none."""
    line = fit(s)
    if line is None:
        if s.n == 0:
            return "no forecast: no values yet"
        if s.n == 1:
            return "no forecast: a single value (a trend needs at least 2)"
        return "no forecast: every recent value was taken at the same moment"
    days = (ends_at - as_of).total_seconds() / 86400
    starts = as_of + timedelta(days=s.first)
    span = timedelta(days=s.last - s.first)
    if span < MIN_SPAN:  # seconds apart: a slope would send the forecast to millions
        mean = s.sy / s.n
        return Forecast(Line(0.0, mean), s.n, starts, ends_at, mean, mean, span)
    return Forecast(line, s.n, starts, ends_at, line.at(days), line.at(s.first))


def too_short(f: Forecast) -> str:
    """Why a forecast is flat, for the report to say."""
    span = f.short if f.short is not None else timedelta(0)
    return (
        f"flat at their mean: they span only {_duration(span)}, too short for a trend "
        f"(at least {_duration(MIN_SPAN)})"
    )


def _duration(span: timedelta) -> str:
    seconds = round(span.total_seconds())
    if seconds < 120:
        return f"{seconds} second{'' if seconds == 1 else 's'}"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} minutes"
    return f"{round(minutes / 60)} hours"
