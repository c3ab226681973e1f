"""Request counters with hand-computable increases, for the SLO tests against a real
Prometheus: each job serves a piecewise-constant number of requests per second, a fixed
fraction of which fail, so the good and bad events between two instants are plain sums
of rate x duration.

Prometheus' `increase()` over a window takes a counter's rise between the first and the
last sample in it and scales that up to the whole window: about rate x duration (exact
while the rate is constant near both edges), and by the same factor for every counter
sampled at the same instants, so a ratio of two increases (an SLI, a burn rate) is
exactly the ratio of the requests between those two samples (`Traffic.sampled`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_server import HistorySample, series

METRIC = "http_requests_total"
GOOD_CODE, BAD_CODE = "200", "500"
BASE = 1_000_000.0
"""Every counter's first value: far from zero, so `increase()` never clamps its
extrapolation to where the counter would have been 0."""


@dataclass(frozen=True)
class Phase:
    """From `since` until the next phase: `rate` requests per second, of which the
    fraction `errors` fail (code 500) and the rest succeed (code 200)."""

    since: datetime
    rate: float
    errors: float


@dataclass(frozen=True)
class Events:
    """Good and bad requests over some window."""

    good: float
    bad: float

    @property
    def total(self) -> float:
        return self.good + self.bad

    @property
    def sli(self) -> float:
        """Percent of good requests."""
        return 100 * self.good / self.total

    def burn_rate(self, objective: float) -> float:
        """The error ratio over the error budget's (1 - objective/100)."""
        return (self.bad / self.total) / (1 - objective / 100)

    def budget_remaining(self, objective: float) -> float:
        return 1 - self.burn_rate(objective)


@dataclass(frozen=True)
class Traffic:
    """The requests of `job`: `phases` in time order, the first one starting the counters."""

    job: str
    phases: tuple[Phase, ...]

    def events(self, start: datetime, end: datetime) -> Events:
        """Exact good and bad requests served between `start` and `end`."""
        good = bad = 0.0
        for phase, until in zip(
            self.phases, [*(p.since for p in self.phases[1:]), None], strict=True
        ):
            lo = max(start, phase.since)
            hi = end if until is None else min(end, until)
            seconds = (hi - lo).total_seconds()
            if seconds > 0:
                good += seconds * phase.rate * (1 - phase.errors)
                bad += seconds * phase.rate * phase.errors
        return Events(good, bad)

    def sampled(self, start: datetime, end: datetime, step: timedelta) -> Events:
        """The requests between the first and the last sample (every `step`) that fall in
        `start`..`end`: what `increase()` over that window scales up."""
        first = self.phases[0].since
        lo = first + math.ceil(max(start - first, timedelta()) / step) * step
        hi = first + math.floor((end - first) / step) * step
        return self.events(lo, hi)

    def samples(self, end: datetime, step: timedelta) -> Iterator[HistorySample]:
        """Both counters of the job every `step` from the first phase up to `end`."""
        first = self.phases[0].since
        for code, good in ((GOOD_CODE, True), (BAD_CODE, False)):

            def value(k: int, good: bool = good) -> float:
                events = self.events(first, first + k * step)
                return BASE + (events.good if good else events.bad)

            labels = {"job": self.job, "code": code}
            yield from series(METRIC, labels, first, end, step, value)


def samples(traffic: Iterable[Traffic], end: datetime, step: timedelta) -> Iterator[HistorySample]:
    """The counters of every job in `traffic`."""
    for job in traffic:
        yield from job.samples(end, step)
