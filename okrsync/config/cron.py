"""Cron expressions (5 fields, names, steps, `@hourly`...): when a `cron:` KR is next due.

Small and dependency-free: okrsync only needs "the next firing after t" in a time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_MONTH_DAYS = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]  # at most, by month
# (name, low, high, names whose index + offset is the value)
_FIELDS: tuple[tuple[str, int, int, list[str], int], ...] = (
    ("minute", 0, 59, [], 0),
    ("hour", 0, 23, [], 0),
    ("day of month", 1, 31, [], 0),
    ("month", 1, 12, _MONTHS, 1),
    ("day of week", 0, 7, _DAYS, 0),
)
_HORIZON = timedelta(days=366 * 5)


class CronError(ValueError):
    """A cron expression that cannot be parsed; the message says which field and why."""


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression: the allowed values of each field."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    def _day_ok(self, moment: datetime) -> bool:
        dom = moment.day in self.days
        dow = (moment.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:  # only one restricted: it alone decides
            return dom and dow
        return dom or dow  # both restricted: either matches (as Vixie cron does)

    def next_after(self, moment: datetime, zone: str = "UTC") -> datetime:
        """The first firing strictly after `moment` (aware), computed in time zone `zone`."""
        tz = ZoneInfo(zone)
        local = moment.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)
        local += timedelta(minutes=1)
        limit = local + _HORIZON
        while local < limit:
            if local.month not in self.months:
                year, month = divmod(local.month, 12)
                local = datetime(local.year + year, month + 1, 1)
            elif not self._day_ok(local):
                local = datetime(local.year, local.month, local.day) + timedelta(days=1)
            elif local.hour not in self.hours:
                local = local.replace(minute=0) + timedelta(hours=1)
            elif local.minute not in self.minutes:
                local += timedelta(minutes=1)
            else:
                return local.replace(tzinfo=tz).astimezone(UTC)
        raise CronError(f"'{self.text}' never fires (checked five years ahead)")


def longest_gap(cron: Cron, start: datetime, zone: str = "UTC", samples: int = 10) -> float:
    """Seconds of the longest wait between firings after `start` (a cadence for staleness:
    a weekday-only schedule's longest gap is the weekend)."""
    moments = [cron.next_after(start, zone)]
    for _ in range(samples):
        moments.append(cron.next_after(moments[-1], zone))
    return max((b - a).total_seconds() for a, b in pairwise(moments))


def parse(text: str) -> Cron:
    """Parse `minute hour day-of-month month day-of-week`, or an alias such as `@hourly`;
    an expression that can never fire (`0 0 31 2 *`) is an error too."""
    expr = ALIASES.get(text.strip().lower(), text)
    parts = expr.split()
    if len(parts) != 5:
        raise CronError(
            f"'{text}' is not a cron expression: it needs 5 fields "
            "(minute hour day-of-month month day-of-week), e.g. '0 * * * *', or @hourly"
        )
    sets = [_field(part, *spec, text) for part, spec in zip(parts, _FIELDS, strict=True)]
    days, months = sets[2], sets[3]
    # With the day of week `*`, the day of month alone decides: it may rule out every date.
    if parts[4] == "*" and min(days) > max(_MONTH_DAYS[m] for m in months):
        raise CronError(
            f"'{text}' never fires: day of month field '{parts[2]}' "
            f"does not occur in month field '{parts[3]}'"
        )
    weekdays = frozenset(d % 7 for d in sets[4])
    return Cron(
        text,
        sets[0],
        sets[1],
        sets[2],
        sets[3],
        weekdays,
        parts[2] == "*",
        parts[4] == "*",
    )


def _field(
    part: str, name: str, low: int, high: int, names: list[str], offset: int, text: str
) -> frozenset[int]:
    values: set[int] = set()
    for item in part.lower().split(","):
        span, _, step_text = item.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if step < 1:
                raise ValueError
            if span == "*":
                first, last = low, high
            else:
                a, _, b = span.partition("-")
                first = _number(a, names, offset)
                last = _number(b, names, offset) if b else (high if step_text else first)
        except ValueError:
            raise CronError(f"'{text}': {name} field '{part}' is not valid") from None
        if not (low <= first <= last <= high):
            raise CronError(f"'{text}': {name} field '{part}' is outside {low}-{high}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _number(token: str, names: list[str], offset: int) -> int:
    if token in names:
        return names.index(token) + offset
    return int(token)
