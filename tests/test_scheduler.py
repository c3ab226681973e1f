"""Scheduling without a clock: due times, jitter, restarts from the store, cron, lanes."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from okrsync.config import cron
from okrsync.config.loader import load
from okrsync.service.scheduler import Lanes, Schedule, Timing, lane, spread, timing

T0 = datetime(2026, 11, 15, 12, 0, tzinfo=UTC).timestamp()
HOUR = Timing(3600.0)
MINUTE = Timing(60.0)
HOURS = timedelta(hours=1)


def test_restart_resumes_from_the_last_attempt() -> None:
    """A KR measured 10 minutes ago with every 1h is due in 50 minutes, not now."""
    schedule = Schedule()
    schedule.plan({"a": HOUR}, {"a": T0 - 600}, T0)
    assert schedule.due["a"] == T0 + 3000
    assert schedule.pop_due(T0) == []
    assert schedule.pop_due(T0 + 2999) == []
    assert schedule.pop_due(T0 + 3000) == ["a"]


def test_never_measured_and_overdue_krs_run_soon_spread_by_jitter() -> None:
    """KRs without history or long overdue run within the jitter window, not all at once."""
    schedule = Schedule(jitter=0.1, max_jitter=60)
    ids = [f"kr-{i}" for i in range(1000)]
    last = {k: (T0 - 7200 if i % 2 else None) for i, k in enumerate(ids)}
    schedule.plan(dict.fromkeys(ids, MINUTE), last, T0)
    offsets = sorted(schedule.due[k] - T0 for k in ids)
    assert offsets[0] >= 0 and offsets[-1] < 6.0  # 10% of 1m
    assert offsets[-1] - offsets[0] > 5.0  # really spread over the window
    assert max(sum(1 for o in offsets if s <= o < s + 1) for s in range(6)) < 250


def test_jitter_is_stable_per_kr_and_capped() -> None:
    """The offset of a KR is the same on every start and at most max_jitter seconds."""
    assert spread("api-uptime") == spread("api-uptime")
    assert spread("api-uptime") != spread("api-latency")
    schedule = Schedule(jitter=0.5, max_jitter=30)
    schedule.plan({"a": Timing(86400.0)}, {}, T0)
    assert T0 <= schedule.due["a"] < T0 + 30


def test_identical_queries_fall_due_in_the_same_tick() -> None:
    """KRs asking the same query share their jitter, so one fetch serves them all."""
    schedule = Schedule(jitter=0.1)
    same = Timing(60.0, phase='[["jira", {"jql": "project = X"}]]')
    other = Timing(60.0, phase='[["jira", {"jql": "project = Y"}]]')
    schedule.plan({"a": same, "b": same, "c": other}, {}, T0)
    assert schedule.due["a"] == schedule.due["b"] != schedule.due["c"]


def test_done_keeps_the_phase_and_skips_missed_runs() -> None:
    """A finished KR is due one interval after its due time; an overrun skips, not bursts."""
    schedule = Schedule(jitter=0)
    schedule.plan({"a": MINUTE}, {"a": T0 - 60}, T0)
    assert schedule.pop_due(T0) == ["a"]
    schedule.done(["a"], T0 + 0.7)  # finished late: still due at T0 + 60
    assert schedule.due["a"] == T0 + 60
    assert schedule.pop_due(T0 + 60) == ["a"]
    schedule.done(["a"], T0 + 200)  # ran past two intervals
    assert schedule.due["a"] == T0 + 240


def test_running_krs_are_not_popped_twice() -> None:
    """A KR whose batch has not finished is not handed out again, however late it gets."""
    schedule = Schedule(jitter=0)
    schedule.plan({"a": Timing(1.0)}, {"a": T0 - 1}, T0)
    assert schedule.pop_due(T0) == ["a"]
    assert schedule.pop_due(T0 + 10) == []
    assert schedule.next_due() is None


def test_reload_adds_removes_and_retimes() -> None:
    """A new config schedules new KRs, drops removed ones, re-times changed ones only."""
    schedule = Schedule(jitter=0)
    schedule.plan({"keep": HOUR, "gone": HOUR, "slower": MINUTE}, {}, T0)
    schedule.done(schedule.pop_due(T0), T0 + 1)
    keep_due = schedule.due["keep"]
    schedule.plan(
        {"keep": HOUR, "slower": HOUR, "new": HOUR},
        {"keep": T0, "slower": T0, "new": None},
        T0 + 30,
    )
    assert set(schedule.due) == {"keep", "slower", "new"}
    assert schedule.due["keep"] == keep_due
    assert schedule.due["slower"] == T0 + 3600
    assert schedule.due["new"] == T0 + 30


def test_a_kr_removed_while_running_is_not_rescheduled() -> None:
    """When a reload removes a running KR, its finishing batch does not bring it back."""
    schedule = Schedule(jitter=0)
    schedule.plan({"a": MINUTE}, {}, T0)
    schedule.pop_due(T0)
    schedule.plan({}, {}, T0 + 1)
    schedule.done(["a"], T0 + 2)
    assert schedule.due == {}


def test_cron_schedule_and_restart() -> None:
    """A cron KR measured after the last firing waits for the next one; a missed one runs now."""
    t = Timing(3600.0, cron.parse("0 * * * *"))
    schedule = Schedule(jitter=0)
    schedule.plan({"a": t, "b": t}, {"a": T0 + 60, "b": T0 - 3600}, T0 + 120)
    assert schedule.due["a"] == T0 + 3600
    assert schedule.due["b"] == T0 + 120  # missed the 12:00 firing while down
    schedule.pop_due(T0 + 120)
    schedule.done(["b"], T0 + 121)
    assert schedule.due["b"] == T0 + 3600


def run_daemon_loop(
    t: Timing, start: datetime, end: datetime, last: float | None, run_seconds: float
) -> Counter[str]:
    """One KR driven the way the daemon drives it, on a fake clock: pop what is due, let
    the batch take `run_seconds`, report it done, else jump to the next due time. Returns
    the runs started in each UTC hour."""
    schedule, now = Schedule(), start.timestamp()
    schedule.plan({"kr": t}, {"kr": last}, now)
    runs: Counter[str] = Counter()
    while now < end.timestamp():
        due = schedule.pop_due(now)
        if due:
            runs[datetime.fromtimestamp(now, UTC).strftime("%m-%d %H")] += 1
            now += run_seconds
            schedule.done(due, now)
        else:
            upcoming = schedule.next_due()
            assert upcoming is not None and upcoming > now
            now = upcoming
    return runs


@pytest.mark.parametrize(
    ("zone", "start", "last"),
    [
        ("Europe/Berlin", "2026-10-24T23:00", None),  # falls back at 01:00Z
        ("Europe/Berlin", "2026-10-25T01:00", None),  # (re)started in the second 02:00
        ("Europe/Berlin", "2026-10-25T01:00", "2026-10-25T00:45"),  # ... measured at 02:45 CEST
        ("Europe/Berlin", "2026-03-29T00:00", None),  # springs forward at 01:00Z
        ("America/New_York", "2026-11-01T04:00", None),  # falls back at 06:00Z
        ("America/New_York", "2026-11-01T06:00", None),
        ("America/New_York", "2026-03-08T06:00", None),  # springs forward at 07:00Z
    ],
)
def test_cron_kr_runs_four_times_an_hour_through_dst_changes(
    zone: str, start: str, last: str | None
) -> None:
    """A `*/15` KR whose batch takes 2.7 s runs 4 times in every real hour around a DST
    change, the repeated hour included (the defect: 1,350 runs in it, or none)."""
    t = Timing(900.0, cron.parse("*/15 * * * *"), zone)
    begin = datetime.fromisoformat(start).replace(tzinfo=UTC)
    stored = None if last is None else datetime.fromisoformat(last).replace(tzinfo=UTC).timestamp()
    runs = run_daemon_loop(t, begin, begin + 3 * HOURS, stored, 2.667)
    hours = [f"{begin + i * HOURS:%m-%d %H}" for i in range(3)]
    assert runs == dict.fromkeys(hours, 4)


def test_restart_in_the_repeated_hour_waits_for_the_next_firing() -> None:
    """Restarted at 01:40Z on the Berlin fall-back day after a run at 01:35Z (02:35 CET),
    a `*/15` KR is due at 01:45Z, not at once (the old answer, 00:45Z, was in the past)."""
    t = Timing(900.0, cron.parse("*/15 * * * *"), "Europe/Berlin")
    at = datetime(2026, 10, 25, 1, 35, tzinfo=UTC).timestamp()
    schedule = Schedule(jitter=0)
    schedule.plan({"a": t}, {"a": at}, at + 300)
    assert schedule.due["a"] == at + 600


CONFIG = """\
period: {name: Q4, start: 2026-10-01, end: 2026-12-31, timezone: Europe/Berlin}
defaults: {every: 5m}
sources:
  p: {type: prometheus, url: "http://127.0.0.1:1"}
  q: {type: prometheus, url: "http://127.0.0.1:2"}
objectives:
  - id: o
    title: O
    key_results:
      - {id: plain, source: p, query: x, target: 1}
      - {id: hourly, source: p, query: x, target: 1, every: 1h}
      - {id: cronned, source: q, query: x, target: 1, cron: "0 9 * * *"}
      - id: mixed
        formula: a / b
        inputs: {a: {source: p, query: a}, b: {source: q, query: b}}
        target: 1
"""


def test_timings_and_lanes_from_config(tmp_path: Path) -> None:
    """Config gives each KR its timing (interval, jitter phase, cron zone) and its lane."""
    path = tmp_path / "okrs.yaml"
    path.write_text(CONFIG)
    config = load(path)
    krs = {kr.id: kr for _, kr in config.key_results()}
    plain, hourly = timing(config, krs["plain"]), timing(config, krs["hourly"])
    assert (plain.interval, plain.cron, hourly.interval) == (300.0, None, 3600.0)
    assert plain.phase == hourly.phase != timing(config, krs["mixed"]).phase  # same query
    cronned = timing(config, krs["cronned"])
    assert cronned.cron is not None and cronned.zone == "Europe/Berlin"
    assert lane(krs["plain"]) == frozenset({"p"})
    assert lane(krs["mixed"]) == frozenset({"p", "q"})


def test_lanes_hold_one_batch_each_and_merge_waiting_krs() -> None:
    """A busy lane queues its due KRs into one next batch; other lanes start at once."""
    lanes = Lanes()
    of = {"a": frozenset({"slow"}), "b": frozenset({"slow"}), "c": frozenset({"fast"})}
    assert lanes.add(["a"], of) == [(frozenset({"slow"}), ["a"])]
    assert lanes.add(["b", "c"], of) == [(frozenset({"fast"}), ["c"])]
    assert lanes.finish(frozenset({"fast"})) is None
    assert lanes.finish(frozenset({"slow"})) == ["b"]  # the lane stays busy with b
    assert lanes.add(["a"], of) == []
    assert lanes.finish(frozenset({"slow"})) == ["a"]
    assert lanes.finish(frozenset({"slow"})) is None
    assert lanes.idle()
