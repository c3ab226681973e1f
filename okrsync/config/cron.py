"""Cron expressions (5 fields, names, steps, `@hourly`...): when a `cron:` KR is next due.

okrsync checks the fields itself (its messages name the field and the allowed range) and
leaves matching and iteration to cronsim, which follows Debian cron across DST changes: a
job at a fixed time runs once when the clock falls back, and as soon as the clock has
sprung forward when its time was skipped; `*/15`-like jobs keep firing in real time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

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
_CHECK_FROM = datetime(2000, 1, 1, tzinfo=UTC)


class CronError(ValueError):
    """A cron expression that cannot be parsed; the message says which field and why."""


@dataclass(frozen=True)
class Cron:
    """A checked cron expression: `text` as written, `expr` its five fields (no alias)."""

    text: str
    expr: str

    def next_after(self, moment: datetime, zone: str = "UTC") -> datetime:
        """The first firing strictly after `moment` (aware), in UTC; the fields are read
        as local time in time zone `zone`."""
        # cronsim iterates a fixed-time job ("30 2 * * *") on the wall clock, so from
        # inside a fall-back hour its first answer can be the earlier pass of that hour:
        # skip answers that are not after `moment` (Debian cron does not run them twice).
        try:
            for fire in CronSim(self.expr, moment.astimezone(ZoneInfo(zone))):
                utc = fire.astimezone(UTC)
                if utc > moment:
                    return utc
        except CronSimError as exc:  # parse() has checked the fields: not expected
            raise CronError(f"'{self.text}' is not valid: {exc}") from None
        raise CronError(f"'{self.text}' never fires (checked 50 years ahead)")


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
    # As in Debian (and Vixie) cron, a day field starting with `*` leaves the other one
    # alone to decide; otherwise either may match. So only the day of month can rule out
    # every date, when the day of week starts with `*`.
    days, months = sets[2], sets[3]
    if parts[4].startswith("*") and min(days) > max(_MONTH_DAYS[m] for m in months):
        raise CronError(
            f"'{text}' never fires: day of month field '{parts[2]}' "
            f"does not occur in month field '{parts[3]}'"
        )
    cron = Cron(text, " ".join(parts))
    try:
        CronSim(cron.expr, _CHECK_FROM)  # the fields above are a subset of cronsim's syntax
    except CronSimError as exc:
        raise CronError(f"'{text}' is not valid: {exc}") from None
    return cron


def _field(
    part: str, name: str, low: int, high: int, names: list[str], offset: int, text: str
) -> frozenset[int]:
    values: set[int] = set()
    for item in part.lower().split(","):
        span, slash, step_text = item.partition("/")
        try:
            step = _digits(step_text) if slash else 1
            if step < 1:
                raise ValueError
            if span == "*":
                first, last = low, high
            else:
                a, dash, b = span.partition("-")
                first = _number(a, names, offset)
                last = _number(b, names, offset) if dash else (high if slash else first)
        except ValueError:
            raise CronError(f"'{text}': {name} field '{part}' is not valid") from None
        if not (low <= first <= last <= high):
            raise CronError(f"'{text}': {name} field '{part}' is outside {low}-{high}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _number(token: str, names: list[str], offset: int) -> int:
    if token in names:
        return names.index(token) + offset
    return _digits(token)


def _digits(token: str) -> int:
    """ASCII digits only, as cron and cronsim read them: not `+5`, `5_0` or other scripts."""
    if not (token.isascii() and token.isdigit()):
        raise ValueError(token)
    return int(token)
