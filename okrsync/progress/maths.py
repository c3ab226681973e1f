"""Progress and status maths: pure functions, no I/O and no clock (`now` is passed in)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from okrsync.config.model import Thresholds
from okrsync.measure.slo_reading import SloReading, budget_spent

Status = Literal["done", "on_track", "at_risk", "off_track", "no_data", "stale"]
STATUSES: tuple[Status, ...] = ("done", "on_track", "at_risk", "off_track", "stale", "no_data")


def kr_progress(value: float, start: float, target: float) -> float:
    """Raw progress: 0 at start, 1 at target; works alike for decreasing KRs (target < start)."""
    return (value - start) / (target - start)


def clamp(progress: float) -> float:
    """Progress as shown and rolled up: within [0, 1], so one overshoot cannot hide another."""
    return min(1.0, max(0.0, progress))


def expected_progress(starts_at: datetime, ends_at: datetime, now: datetime) -> float:
    """Elapsed fraction of the period at `now`, within [0, 1]."""
    total = (ends_at - starts_at).total_seconds()
    return clamp((now - starts_at).total_seconds() / total)


def classify(progress: float, expected: float, thresholds: Thresholds) -> Status:
    """Status of a (clamped) progress against the expected progress at this point in time."""
    if progress >= 1:
        return "done"
    if progress >= expected - thresholds.on_track:
        return "on_track"
    if progress >= expected - thresholds.at_risk:
        return "at_risk"
    return "off_track"


@dataclass(frozen=True)
class Observation:
    """What the store knows of one KR as of `now`: its latest value and latest attempt."""

    value: float | None = None
    measured_at: datetime | None = None
    manual: bool = False
    attempted_at: datetime | None = None
    error: str | None = None
    progress: float | None = None
    """The progress and status stored with the latest value (what "only changes are
    pushed" compares a new measurement with)."""
    status: str | None = None
    until: datetime | None = None
    """Set when the value is a manual override still holding (as of `now`) until then:
    automated values recorded meanwhile do not replace it, nor do failed attempts or age
    make it stale."""
    author: str | None = None
    note: str | None = None
    """Who checked the holding override in, and why (with `until`)."""
    held_back: bool = False
    """The value is an automated one taken while an override held (so sinks were not
    sent it); the override has expired since."""
    backfilled: bool = False
    """The value was measured afterwards for its instant (`okrsync backfill`), not live."""
    slo: SloReading | None = None
    """An SLO KR's reading with the value (budget, burn rates, firing alerts)."""

    @property
    def slo_shown(self) -> SloReading | None:
        """The SLO reading behind the value shown: none while a check-in override holds
        (a typed value has no budget or burn rates of its own)."""
        return self.slo if self.until is None else None

    def holds(self, at: datetime) -> bool:
        """Whether this is an override that still holds at `at`."""
        return self.until is not None and at < self.until


def observe(
    prior: Observation,
    value: float | None,
    error: str | None,
    at: datetime,
    progress: float | None = None,
    status: str | None = None,
    slo: SloReading | None = None,
) -> Observation:
    """What is known after an attempt at `at`: its value (with the progress and status
    stored with it), or the prior value and its error."""
    if value is not None:
        return Observation(value, at, False, at, None, progress, status, slo=slo)
    return Observation(
        prior.value,
        prior.measured_at,
        prior.manual,
        at,
        error,
        prior.progress,
        prior.status,
        backfilled=prior.backfilled,
        slo=prior.slo,
    )


def observe_held(
    prior: Observation,
    value: float | None,
    error: str | None,
    at: datetime,
    progress: float | None = None,
    status: str | None = None,
    slo: SloReading | None = None,
) -> Observation:
    """`observe`, except that an override holding at `at` keeps its value: the attempt is
    only noted (automation records under an override but does not replace it)."""
    if prior.holds(at):
        return replace(prior, attempted_at=at)
    return observe(prior, value, error, at, progress, status, slo)


def kr_status(
    obs: Observation,
    progress: float | None,
    expected: float,
    now: datetime,
    max_age: float | None,
    thresholds: Thresholds,
) -> Status:
    """`no_data` without a value; `stale` when the last attempt failed or the value is older
    than `max_age` seconds (None: never by age); otherwise the progress classification."""
    if progress is None:
        return "no_data"
    return _unknown(obs, now, max_age) or classify(clamp(progress), expected, thresholds)


def _unknown(obs: Observation, now: datetime, max_age: float | None) -> Status | None:
    """`no_data` without a value, `stale` when the last attempt failed or the value is
    older than `max_age` seconds; None when the value stands (a holding override always)."""
    if obs.value is None or obs.measured_at is None:
        return "no_data"
    if obs.until is not None:  # a holding override: neither failed attempts nor age count
        return None
    failed_since = (
        obs.error is not None
        and obs.attempted_at is not None
        and (obs.attempted_at >= obs.measured_at)
    )
    too_old = max_age is not None and (now - obs.measured_at).total_seconds() > max_age
    return "stale" if failed_since or too_old else None


def slo_status(
    obs: Observation,
    objective: float,
    rolling: bool,
    elapsed: float,
    ended: bool,
    now: datetime,
    max_age: float | None,
) -> Status:
    """An SLO KR's status, by its budget: `off_track` once spent (SLI below the objective),
    even while an alert fires; `at_risk` while a burn alert fires or, over the period, the
    budget goes faster than the period (`elapsed`: its fraction gone); `done` only once
    the period has ended with the objective met. No value or stale: as any KR."""
    unknown = _unknown(obs, now, max_age)
    if unknown is not None or obs.value is None:
        return unknown or "no_data"
    if obs.value < objective:
        return "off_track"
    if ended:
        return "done"
    reading = obs.slo_shown
    if reading is not None and reading.alerts_firing:
        return "at_risk"
    if not rolling and budget_spent(obs.value, objective) > elapsed:
        return "at_risk"
    return "on_track"


def weighted_mean(items: list[tuple[float | None, float]]) -> tuple[float | None, int]:
    """Weighted mean of (progress, weight) pairs that have data, and how many had none."""
    known = [(p, w) for p, w in items if p is not None]
    missing = len(items) - len(known)
    weight = sum(w for _, w in known)
    if not known:
        return None, missing
    if weight == 0:
        return sum(p for p, _ in known) / len(known), missing
    return sum(p * w for p, w in known) / weight, missing
