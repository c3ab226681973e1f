"""Cron expressions: okrsync's field checks and messages, cronsim's firings, DST changes."""

from __future__ import annotations

import bisect
import re
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from okrsync.config import cron

BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"
# The 2026 changes: Berlin at 01:00Z (Mar 29 02:00 -> 03:00, Oct 25 03:00 -> 02:00),
# New York at 07:00Z on Mar 8 (02:00 -> 03:00) and 06:00Z on Nov 1 (02:00 -> 01:00).
TRANSITIONS = [
    (BERLIN, datetime(2026, 3, 29, 1, tzinfo=UTC)),
    (BERLIN, datetime(2026, 10, 25, 1, tzinfo=UTC)),
    (NEW_YORK, datetime(2026, 3, 8, 7, tzinfo=UTC)),
    (NEW_YORK, datetime(2026, 11, 1, 6, tzinfo=UTC)),
]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def firings(expr: str, after: str, zone: str, count: int) -> list[datetime]:
    """The next `count` firings, each asked for from the previous one, as the daemon does."""
    parsed, moment, found = cron.parse(expr), utc(after), []
    for _ in range(count):
        moment = parsed.next_after(moment, zone)
        found.append(moment)
    return found


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("0 * * * *", "2026-11-15T12:00:00", "2026-11-15T13:00:00"),
        ("*/15 * * * *", "2026-11-15T12:07:30", "2026-11-15T12:15:00"),
        ("30 9 * * mon-fri", "2026-11-14T10:00:00", "2026-11-16T09:30:00"),  # Sat -> Mon
        ("0 0 1 jan,jul *", "2026-11-15T00:00:00", "2027-01-01T00:00:00"),
        ("0 0 13 * 5", "2026-11-01T00:00:00", "2026-11-06T00:00:00"),  # dom OR dow
        ("@daily", "2026-11-15T23:59:00", "2026-11-16T00:00:00"),
        ("0 12 * * 7", "2026-11-15T12:00:00", "2026-11-22T12:00:00"),  # 7 is Sunday
        ("0 0 29 2 *", "2026-03-01T00:00:00", "2028-02-29T00:00:00"),  # leap days only
        ("0 0 */2 * mon", "2026-11-01T00:00:00", "2026-11-09T00:00:00"),  # `*/2`: AND
        ("*/15 * * * *", "2026-11-15T12:14:59.999", "2026-11-15T12:15:00"),
        ("*/15 * * * *", "2026-11-15T12:15:00.001", "2026-11-15T12:30:00"),
    ],
)
def test_next_firing(expr: str, after: str, expected: str) -> None:
    """The next firing strictly after a moment follows cron's field rules (Debian's for days:
    a day field starting with `*` leaves the other alone to decide)."""
    assert cron.parse(expr).next_after(utc(after)) == utc(expected)


def test_in_the_period_time_zone() -> None:
    """A cron KR fires at local time in the period's time zone (Berlin is UTC+1 in Nov)."""
    moment = datetime(2026, 11, 15, 0, 0, tzinfo=UTC)
    got = cron.parse("0 9 * * *").next_after(moment, BERLIN)
    assert got == datetime(2026, 11, 15, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("* * * *", "needs 5 fields"),
        ("61 * * * *", "'61 * * * *': minute field '61' is outside 0-59"),
        ("0 25 * * *", "'0 25 * * *': hour field '25' is outside 0-23"),
        ("* * * foo *", "month field 'foo' is not valid"),
        ("*/0 * * * *", "minute field '*/0' is not valid"),
        ("*/ * * * *", "minute field '*/' is not valid"),
        ("1- * * * *", "minute field '1-' is not valid"),
        ("+5 * * * *", "minute field '+5' is not valid"),
        ("5_0 * * * *", "minute field '5_0' is not valid"),
        ("0 0 * * mon#2", "day of week field 'mon#2' is not valid"),
        ("0 0 L * *", "day of month field 'L' is not valid"),
        (
            "0 0 31 2 *",
            "'0 0 31 2 *' never fires: day of month field '31' does not occur in month field '2'",
        ),
        ("0 0 30 feb *", "never fires"),
        ("@monthly31", "needs 5 fields"),
    ],
)
def test_bad_cron_is_explained_when_parsed(expr: str, message: str) -> None:
    """An invalid or never-firing expression fails at parse (so at `validate`), naming the
    field and what is wrong with it; okrsync accepts no cronsim-only syntax (`#`, `L`)."""
    with pytest.raises(cron.CronError, match=re.escape(message)):
        cron.parse(expr)


@pytest.mark.parametrize(
    ("zone", "expr", "after", "expected"),
    [
        # Berlin falls back: local 02:00-02:59 is 00:00-00:59Z (CEST) and again 01:00-01:59Z.
        (
            BERLIN,
            "*/15 * * * *",
            "10-25 00:20",
            ["10-25 00:30", "10-25 00:45", "10-25 01:00", "10-25 01:15"],
        ),
        (BERLIN, "*/15 * * * *", "10-25 01:35", ["10-25 01:45", "10-25 02:00"]),  # the regression
        (BERLIN, "0 * * * *", "10-24 23:30", ["10-25 00:00", "10-25 01:00", "10-25 02:00"]),
        (BERLIN, "30 2 * * *", "10-24 23:00", ["10-25 00:30", "10-26 01:30"]),  # once, CEST
        (BERLIN, "30 2 * * *", "10-25 01:00", ["10-26 01:30"]),  # not again at 02:30 CET
        (BERLIN, "@daily", "10-24 12:00", ["10-24 22:00", "10-25 23:00"]),  # a 25 h day
        # Berlin springs forward: local 02:00-02:59 does not exist on 29 March.
        (BERLIN, "*/15 * * * *", "03-29 00:40", ["03-29 00:45", "03-29 01:00", "03-29 01:15"]),
        (BERLIN, "0 * * * *", "03-29 00:30", ["03-29 01:00", "03-29 02:00"]),
        (BERLIN, "30 2 * * *", "03-28 12:00", ["03-29 01:00", "03-30 00:30"]),  # at 03:00 CEST
        (BERLIN, "@daily", "03-28 12:00", ["03-28 23:00", "03-29 22:00"]),  # a 23 h day
        # New York falls back: local 01:00-01:59 is 05:00-05:59Z (EDT) and again 06:00-06:59Z.
        (NEW_YORK, "*/15 * * * *", "11-01 05:50", ["11-01 06:00", "11-01 06:15"]),
        (NEW_YORK, "*/15 * * * *", "11-01 06:35", ["11-01 06:45", "11-01 07:00"]),
        (NEW_YORK, "0 * * * *", "11-01 04:30", ["11-01 05:00", "11-01 06:00", "11-01 07:00"]),
        (NEW_YORK, "30 1 * * *", "11-01 04:00", ["11-01 05:30", "11-02 06:30"]),  # once, EDT
        (NEW_YORK, "30 1 * * *", "11-01 06:10", ["11-02 06:30"]),
        (NEW_YORK, "30 2 * * *", "11-01 04:00", ["11-01 07:30", "11-02 07:30"]),
        (NEW_YORK, "@daily", "10-31 12:00", ["11-01 04:00", "11-02 05:00"]),
        # New York springs forward: local 02:00-02:59 does not exist on 8 March.
        (NEW_YORK, "*/15 * * * *", "03-08 06:40", ["03-08 06:45", "03-08 07:00", "03-08 07:15"]),
        (NEW_YORK, "0 * * * *", "03-08 06:30", ["03-08 07:00", "03-08 08:00"]),
        (NEW_YORK, "30 2 * * *", "03-07 12:00", ["03-08 07:00", "03-09 06:30"]),  # 03:00 EDT
        (NEW_YORK, "@daily", "03-07 12:00", ["03-08 05:00", "03-09 04:00"]),
    ],
)
def test_firings_across_dst_changes(zone: str, expr: str, after: str, expected: list[str]) -> None:
    """Across a DST change `*/15` and `0 * * * *` keep real-time steps; a job at a fixed
    local time runs once when the clock falls back and at the jump when it springs forward
    (Debian cron's rules); times are `MM-DD HH:MM` in UTC, 2026."""
    want = [utc(f"2026-{e}") for e in expected]
    assert firings(expr, f"2026-{after}", zone, len(want)) == want


def test_next_after_from_the_second_pass_of_the_fall_back_hour() -> None:
    """The reported defect: from 01:35Z on the Berlin fall-back day (02:35 CET, the second
    02:35) `*/15` is next due at 01:45Z, never at 00:45Z, a time before it was asked."""
    moment = datetime(2026, 10, 25, 1, 35, tzinfo=UTC)
    got = cron.parse("*/15 * * * *").next_after(moment, BERLIN)
    assert got == datetime(2026, 10, 25, 1, 45, tzinfo=UTC)


EXPRESSIONS = [
    "*/15 * * * *",
    "30 2 * * *",
    "0 * * * *",
    "@daily",
    "30 1 * * *",
    "15,45 1-3 * * *",
    "*/20 2 * * *",
    "0 9 * * mon-fri",
]


@pytest.mark.parametrize(
    ("zone", "change"), TRANSITIONS, ids=[f"{z}-{c:%m%d}" for z, c in TRANSITIONS]
)
@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_next_after_agrees_with_cronsim_around_dst_changes(
    zone: str, change: datetime, expr: str
) -> None:
    """Over three days around each change, asked every 7 minutes: each answer is strictly
    after its moment and is the first of one strictly increasing series of firings, the
    very series cronsim itself iterates in the zone."""
    start, end = change - timedelta(days=1, hours=1), change + timedelta(days=2)
    parsed = cron.parse(expr)
    series: list[datetime] = []
    moment = start
    while moment < end:
        moment = parsed.next_after(moment, zone)
        series.append(moment)
    assert all(a < b for a, b in pairwise(series))
    own = CronSim(parsed.expr, start.astimezone(ZoneInfo(zone)))
    direct: list[datetime] = []
    while not direct or direct[-1] < end:
        direct.append(next(own).astimezone(UTC))
    assert series == direct
    moment = start + timedelta(seconds=13)
    while moment < series[-2]:
        got = parsed.next_after(moment, zone)
        assert got > moment
        assert got == series[bisect.bisect_right(series, moment)]
        moment += timedelta(minutes=7)


def test_longest_gap_sees_the_weekend_and_the_long_day() -> None:
    """The longest wait is the weekend for a weekday job, 25 h for @daily over fall-back."""
    start = datetime(2026, 10, 20, tzinfo=UTC)
    assert cron.longest_gap(cron.parse("30 9 * * mon-fri"), start, BERLIN) == 72 * 3600 + 3600
    assert cron.longest_gap(cron.parse("@daily"), start, BERLIN) == 25 * 3600
