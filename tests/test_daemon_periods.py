"""The daemon at period boundaries: idle outside its period, a new period starts clean.

In-process, with a hand-moved clock and scripted connectors (no HTTP, no subprocess).
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from concurrent.futures import wait
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fakes import ScriptedConnector, factory
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from okrsync.connector import QueryBase, Reading, Window
from okrsync.service.daemon import Daemon
from okrsync.service.options import Options

Q4 = "period: {name: Q4, start: 2026-10-01, end: 2026-12-31}"
Q1 = "period: {name: Q1, start: 2027-01-01, end: 2027-03-31}"
BODY = """\
defaults: {every: 1m}
sources:
  jira: {type: prometheus, url: "http://127.0.0.1:1"}
  other: {type: prometheus, url: "http://127.0.0.1:2"}
objectives:
  - id: o
    title: O
    key_results:
      - {id: open-bugs, source: jira, query: "project = X", target: 0, start: 10}
      - {id: uptime, source: other, query: up, target: 1}
      - {id: manual, source: manual, target: 5}
"""
JITTER = 61.0  # past every first-run offset (at most 60 s, and 10% of the interval)


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


Q4_MID = at("2026-11-15T12:00:00+00:00")
Q4_END = at("2027-01-01T00:00:00+00:00")  # the first instant after 2026-12-31 (UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


pytestmark = pytest.mark.usefixtures("events")  # conftest: every log event, debug too


Make = Callable[..., tuple[Daemon, Clock, dict[str, ScriptedConnector]]]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Make]:
    """Start a daemon on `period` (a config line) with the clock at `now`."""
    started: list[Daemon] = []

    def build(
        now: float, period: str = Q4, body: str = BODY, **conns: ScriptedConnector
    ) -> tuple[Daemon, Clock, dict[str, ScriptedConnector]]:
        (tmp_path / "okrs.yaml").write_text(f"{period}\n{body}")
        connectors = {
            "jira": ScriptedConnector({"project = X": 4}),
            "other": ScriptedConnector({"up": 1}),
        } | conns
        clock = Clock(now)
        daemon = Daemon(
            Options(tmp_path / "okrs.yaml", tmp_path / "okrsync.db", listen=None),
            clock=clock,
            factory=factory(connectors),
        )
        daemon.start()
        started.append(daemon)
        return daemon, clock, connectors

    yield build
    for daemon in started:
        daemon.shutdown()


def fetches(conns: dict[str, ScriptedConnector]) -> int:
    return sum(c.requests for c in conns.values())


def settle(daemon: Daemon) -> None:
    """Wait for the batches in flight (a bound for a hang, not a timing assertion)."""
    deadline = time.monotonic() + 10
    while daemon.futures and time.monotonic() < deadline:
        wait(set(daemon.futures), timeout=1)
    assert not daemon.futures


def rows(daemon: Daemon) -> list[tuple[str, float | None, str | None]]:
    """(kr_id, value, period) of every stored measurement, in insertion order."""
    db = sqlite3.connect(daemon.opts.db)
    try:
        return db.execute("SELECT kr_id, value, period FROM measurements ORDER BY id").fetchall()
    finally:
        db.close()


def scrape(daemon: Daemon) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    text = generate_latest(daemon.metrics.registry).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def named(events: list[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [e for e in events if e["event"] == name]


def test_after_the_end_nothing_is_fetched_and_the_end_is_said_once(
    make: Make, events: list[MutableMapping[str, Any]]
) -> None:
    """Started after Q4 ended: ticks start no batch, spend no quota, warn once, report it."""
    daemon, clock, conns = make(Q4_END + 3600)
    for _ in range(5):
        assert daemon.tick() is True
        clock.now += 600  # well past every due time
    assert not daemon.futures and not daemon.lanes.busy
    assert fetches(conns) == 0
    assert rows(daemon) == []
    ended = named(events, "period_ended")
    assert len(ended) == 1
    assert ended[0]["log_level"] == "warning" and ended[0]["period"] == "Q4"
    body = daemon.health.healthz()
    assert body["period_ended"] is True and body["period"] == "Q4" and body["status"] == "ok"
    assert not named(events, "period_not_started")


def test_a_running_daemon_stops_measuring_at_the_end(
    make: Make, events: list[MutableMapping[str, Any]]
) -> None:
    """Measured in the last minutes of Q4; from the first instant after it, no more fetches."""
    daemon, clock, conns = make(Q4_END - 600)
    clock.now += JITTER
    assert daemon.tick() is False
    settle(daemon)
    assert fetches(conns) == 2
    assert daemon.health.healthz()["period_ended"] is False
    assert {r[2] for r in rows(daemon)} == {"Q4"}
    clock.now = Q4_END  # exactly the end instant counts as ended
    for _ in range(4):
        assert daemon.tick() is True
        clock.now += 120  # every KR would be due again by now
    assert not daemon.futures
    assert fetches(conns) == 2
    assert daemon.health.healthz()["period_ended"] is True
    assert len(named(events, "period_ended")) == 1


@pytest.mark.parametrize(
    ("period", "end"),
    [
        (Q4, "2027-01-01T00:00:00+00:00"),
        (
            "period: {name: Q4, start: 2026-10-01, end: 2026-12-31, timezone: Europe/Berlin}",
            "2026-12-31T23:00:00+00:00",
        ),
    ],
    ids=["utc", "berlin"],
)
def test_metrics_export_the_end_instant_while_running_and_after(
    make: Make, period: str, end: str
) -> None:
    """`okrsync_period_end_timestamp_seconds{period="Q4"}` is the end instant, in every state."""
    daemon, clock, _ = make(Q4_MID, period)
    key = (("period", "Q4"),)
    assert scrape(daemon)["okrsync_period_end_timestamp_seconds"] == {key: at(end)}
    clock.now = at(end) - 1
    assert daemon.tick() is False
    settle(daemon)
    clock.now = at(end)
    assert daemon.tick() is True
    assert daemon.health.healthz()["period_ended"] is True
    assert scrape(daemon)["okrsync_period_end_timestamp_seconds"] == {key: at(end)}


def test_berlin_period_has_ended_at_23_utc(make: Make) -> None:
    """In Europe/Berlin, Q4 ends at 23:00 UTC on Dec 31: half an hour later nothing is fetched."""
    period = "period: {name: Q4, start: 2026-10-01, end: 2026-12-31, timezone: Europe/Berlin}"
    daemon, _, conns = make(at("2026-12-31T23:30:00+00:00"), period)
    assert daemon.tick() is True
    assert fetches(conns) == 0
    assert daemon.health.healthz()["period_ended"] is True


def test_a_new_period_by_reload_starts_clean_and_measures_at_once(make: Make) -> None:
    """Q4 measured, ended; the config moves to Q1: no Q4 value leaks into Q1's view or
    metrics, all KRs are measured at once, new rows are Q1's and old rows stay Q4's."""
    daemon, clock, conns = make(Q4_END - 600)
    clock.now += JITTER
    daemon.tick()
    settle(daemon)
    assert sorted(rows(daemon)) == [("open-bugs", 4, "Q4"), ("uptime", 1, "Q4")]
    clock.now = Q4_END + 86400  # Jan 2: ended, idle
    assert daemon.tick() is True
    conns["jira"].answers["project = X"] = 3

    daemon.opts.config.write_text(f"{Q1}\n{BODY}")
    assert daemon.reload() is True
    body = daemon.health.healthz()
    assert body["period"] == "Q1" and body["period_ended"] is False
    view = daemon.view()
    assert view is not None
    defs, obs, _ = view
    assert defs.period.name == "Q1"
    for kr in ("open-bugs", "uptime", "manual"):
        assert obs.get(kr) is None or obs[kr].value is None, kr
    values = scrape(daemon)["okrsync_kr_value"]
    assert math.isnan(values[(("kr", "open-bugs"), ("objective", "o"))])
    assert math.isnan(values[(("kr", "uptime"), ("objective", "o"))])
    assert scrape(daemon)["okrsync_period_end_timestamp_seconds"] == {
        (("period", "Q1"),): at("2027-04-01T00:00:00+00:00")
    }

    before = fetches(conns)
    clock.now += JITTER  # first runs in a period without data are spread over the jitter
    assert daemon.tick() is False
    settle(daemon)
    assert fetches(conns) == before + 2
    stored = rows(daemon)
    assert sorted(r for r in stored if r[2] == "Q4") == [
        ("open-bugs", 4, "Q4"),
        ("uptime", 1, "Q4"),
    ]
    assert sorted(r for r in stored if r[2] == "Q1") == [
        ("open-bugs", 3, "Q1"),
        ("uptime", 1, "Q1"),
    ]
    assert len(stored) == 4
    assert daemon.obs["open-bugs"].value == 3
    assert scrape(daemon)["okrsync_kr_value"][(("kr", "open-bugs"), ("objective", "o"))] == 3


def test_a_new_period_is_measured_at_once_even_when_the_old_schedule_says_later(
    make: Make,
) -> None:
    """Measured hourly, last at 23:30 on Dec 31; the reload to Q1 at 00:05 must not wait
    for 00:30: nothing was measured in Q1, so every KR is due now (within its jitter)."""
    body = BODY.replace("every: 1m", "every: 1h")
    daemon, clock, conns = make(at("2026-12-31T23:30:00+00:00"), Q4, body)
    clock.now += JITTER
    daemon.tick()
    settle(daemon)
    assert fetches(conns) == 2
    clock.now = at("2027-01-01T00:05:00+00:00")
    assert daemon.tick() is True
    daemon.opts.config.write_text(f"{Q1}\n{body}")
    assert daemon.reload() is True
    clock.now += JITTER
    assert daemon.tick() is False
    settle(daemon)
    assert fetches(conns) == 4
    assert sorted(str(r[2]) for r in rows(daemon)) == ["Q1", "Q1", "Q4", "Q4"]


def test_before_the_start_idle_then_measures_from_the_start(
    make: Make, events: list[MutableMapping[str, Any]]
) -> None:
    """Q1 configured in December: idle (said once, at info), measured from Jan 1 00:00 UTC."""
    daemon, clock, conns = make(at("2026-12-20T12:00:00+00:00"), Q1)
    for _ in range(3):
        assert daemon.tick() is True
        clock.now += 600
    assert fetches(conns) == 0
    waiting = named(events, "period_not_started")
    assert len(waiting) == 1 and waiting[0]["log_level"] == "info"
    assert not named(events, "period_ended")
    assert daemon.health.healthz()["period_ended"] is False
    clock.now = at("2027-01-01T00:00:00+00:00") - 0.001
    assert daemon.tick() is True
    clock.now = at("2027-01-01T00:00:00+00:00")
    assert daemon.tick() is False
    settle(daemon)
    assert fetches(conns) == 2
    assert {r[2] for r in rows(daemon)} == {"Q1"}


class Gate(ScriptedConnector):
    """A connector whose first fetch waits until the test releases it."""

    def __init__(self, answers: dict[str, Any]) -> None:
        super().__init__(answers)
        self.release = threading.Event()
        self.entered = threading.Event()

    def fetch(self, query: QueryBase, window: Window) -> Reading:
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(10)
        return super().fetch(query, window)


def test_krs_queued_behind_a_busy_lane_are_not_fetched_after_the_end(make: Make) -> None:
    """A KR that fell due before the end while its lane was busy waits; if the lane frees
    up only after the end, the queued KR must not be fetched (no quota after the end)."""
    body = """\
defaults: {every: 1h}
sources:
  jira: {type: prometheus, url: "http://127.0.0.1:1"}
objectives:
  - id: o
    title: O
    key_results:
      - {id: a, source: jira, query: qa, target: 1}
      - {id: b, source: jira, query: qb, target: 1}
"""
    gate = Gate({"qa": 1, "qb": 2})
    daemon, clock, _ = make(Q4_END - 1200, Q4, body, jira=gate)
    first, second = sorted(daemon.schedule.due, key=daemon.schedule.due.__getitem__)
    assert daemon.schedule.due[first] < daemon.schedule.due[second]
    clock.now = daemon.schedule.due[first]
    daemon.tick()
    assert gate.entered.wait(5)
    clock.now = daemon.schedule.due[second]
    daemon.tick()  # `second` waits for the lane
    assert daemon.lanes.waiting
    clock.now = Q4_END + 60
    gate.release.set()
    settle(daemon)
    assert gate.asked == [f"q{first}"]
    assert [r[0] for r in rows(daemon)] == [first]
    assert daemon.tick() is True
    assert not daemon.lanes.busy


def test_the_idle_loop_sleeps_instead_of_spinning(tmp_path: Path) -> None:
    """`run()` on an ended period with the real clock: about one check per MAX_SLEEP."""
    end = datetime.now(UTC).date() - timedelta(days=10)
    start = date(end.year, end.month, 1) - timedelta(days=60)
    (tmp_path / "okrs.yaml").write_text(f"period: {{name: P, start: {start}, end: {end}}}\n{BODY}")
    conns = {"jira": ScriptedConnector({"project = X": 4}), "other": ScriptedConnector({"up": 1})}
    daemon = Daemon(
        Options(tmp_path / "okrs.yaml", tmp_path / "okrsync.db", listen=None, grace=1),
        factory=factory(conns),
    )
    daemon.start()
    calls: list[bool] = []
    real_tick = daemon.tick

    def counting() -> bool:
        idle = real_tick()
        calls.append(idle)
        return idle

    daemon.tick = counting  # type: ignore[method-assign]
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    time.sleep(1.0)
    daemon.request_stop()
    thread.join(10)
    assert not thread.is_alive()
    assert 1 <= len(calls) < 5
    assert all(calls)
    assert fetches(conns) == 0
    assert daemon.health.healthz()["period_ended"] is True
