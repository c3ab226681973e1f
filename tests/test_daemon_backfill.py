"""Backfill in the daemon: a KR with `backfill: true` seen for the first time is measured
for each day of the period so far, in the background, after the live measurements; on
loopback Jira (Data Center) and GitHub fakes, the daemon in-process on a pinned clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from concurrent.futures import wait
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from backfill_sources import Sources, merged_by, resolved_by, stored
from prometheus_client import generate_latest
from pytest_httpserver import HTTPServer

from okrsync.config.loader import load
from okrsync.service.daemon import Daemon
from okrsync.service.options import Options

NOW = datetime(2026, 10, 10, 15, tzinfo=UTC)
TODAY = "2026-10-10"
JITTER = 400.0  # past the first-run offset of a 1h KR (at most 10% of its interval)
RESOLVED = """\
      - {id: resolved, source: jira, jql: 'project = OPS AND resolved <= "{now}"',
         start: 0, target: 300}
"""
MERGED = """\
      - {id: merged, source: gh, search: "repo:acme/api is:pr is:merged merged:<{now}",
         start: 0, target: 200}
"""
OPEN_NOW = """\
      - {id: open-now, source: jira, jql: "project = OPS AND resolution is EMPTY",
         start: 50, target: 0}
"""


def config(server: HTTPServer, *krs: str, defaults: str = "every: 1h, backfill: true") -> str:
    url = server.url_for("/").rstrip("/")
    return f"""\
period: {{name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}}
defaults: {{{defaults}}}
sources:
  jira: {{type: jira, url: "{url}", deployment: datacenter, timeout: 5}}
  gh: {{type: github, url: "{url}/api/v3", timeout: 5}}
objectives:
  - id: ops
    title: Ops
    key_results:
""" + "".join(krs)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, at: datetime) -> None:
        self.now = at.timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Callable[[Clock], Daemon]]:
    """Started daemons on one config file and one store; each shut down at the end."""
    started: list[Daemon] = []

    def make(clock: Clock) -> Daemon:
        daemon = Daemon(
            Options(tmp_path / "okrs.yaml", tmp_path / "okrsync.db", listen=None, grace=5),
            clock=clock,
        )
        daemon.start()
        started.append(daemon)
        return daemon

    yield make
    for daemon in started:
        if not daemon.closing:
            daemon.shutdown()


def settle(daemon: Daemon, timeout: float = 20) -> None:
    """Wait until the daemon's batches and its background backfill are done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not daemon.futures and daemon.backfiller.thread is None:
            return
        time.sleep(0.01)
    raise AssertionError("the daemon's batches or backfill did not finish")


def tick(daemon: Daemon, clock: Clock) -> None:
    """Move past the first-run offsets and run one tick, as the loop would."""
    clock.now += JITTER
    daemon.tick()


def rows(tmp_path: Path, kr: str) -> list[dict[str, Any]]:
    return stored(tmp_path / "okrsync.db", kr, order="m.id")


def past(sources: Sources, source: str) -> list[str]:
    """The queries asked of `source` that name a day before today (only backfills do)."""
    return [q for s, q in sources.asked if s == source and before_today(q)]


def before_today(query: str) -> bool:
    return any(d < TODAY for d in Sources.days(query))


def points(daemon: Daemon, kr: str) -> str | None:
    """The line of okrsync_backfill_points_total for `kr` as /metrics shows it."""
    text = generate_latest(daemon.metrics.registry).decode()
    wanted = f'okrsync_backfill_points_total{{kr="{kr}"}} '
    return next((line for line in text.splitlines() if line.startswith(wanted)), None)


DAYS = [f"2026-10-{d:02d}T00:00:00" for d in range(1, 11)]


def test_a_new_kr_is_backfilled_from_the_period_start_after_its_live_measurement(
    tmp_path: Path,
    sources: Sources,
    httpserver: HTTPServer,
    daemons: Callable[[Clock], Daemon],
    events: list[MutableMapping[str, Any]],
) -> None:
    """With `defaults: {backfill: true}` each KR gets one value at 00:00 UTC of each day
    of the period so far (Oct 1..10), stored after the live one, counted on /metrics; a KR
    that cannot be backfilled (no {now}) is skipped with its reason, logged once."""
    (tmp_path / "okrs.yaml").write_text(config(httpserver, RESOLVED, MERGED, OPEN_NOW))
    clock = Clock(NOW)
    daemon = daemons(clock)
    tick(daemon, clock)
    settle(daemon)
    live, *backfilled = rows(tmp_path, "resolved")
    assert (live["kind"], live["backfilled"]) == ("daemon", 0)  # stored first
    assert live["query"] == f'project = OPS AND resolved <= "{TODAY}"'
    assert [r["measured_at"][:19] for r in backfilled] == DAYS
    assert all(r["backfilled"] == 1 and r["kind"] == "backfill" for r in backfilled)
    assert [r["value"] for r in backfilled] == [
        resolved_by(date(2026, 10, d)) for d in range(1, 11)
    ]
    merged = rows(tmp_path, "merged")[1:]
    assert [r["value"] for r in merged] == [merged_by(date(2026, 10, d)) for d in range(1, 11)]
    # the live requests went out before any request of the backfill
    first = next(i for i, (_, q) in enumerate(sources.asked) if before_today(q))
    assert sorted(s for s, _ in sources.asked[:first]) == ["github", "jira", "jira"]
    assert [r["backfilled"] for r in rows(tmp_path, "open-now")] == [0]
    assert points(daemon, "resolved") == 'okrsync_backfill_points_total{kr="resolved"} 10.0'
    assert points(daemon, "merged") == 'okrsync_backfill_points_total{kr="merged"} 10.0'
    assert points(daemon, "open-now") is None
    skipped = [e for e in events if e["event"] == "backfill_skipped"]
    assert [(e["kr"], e["log_level"]) for e in skipped] == [("open-now", "info")]
    assert "{now}" in skipped[0]["reason"]
    (finished,) = [e for e in events if e["event"] == "backfill_finished"]
    assert (finished["krs"], finished["written"], finished["failed"]) == (2, 20, 0)
    assert [e["krs"] for e in events if e["event"] == "backfill_started"] == [2]


def test_a_restart_does_not_backfill_again(
    tmp_path: Path,
    sources: Sources,
    httpserver: HTTPServer,
    daemons: Callable[[Clock], Daemon],
) -> None:
    """A new daemon on the same store finds the KR backfilled in this period: it asks the
    source for no past day, not even the one that failed, and writes no backfill run."""
    (tmp_path / "okrs.yaml").write_text(config(httpserver, RESOLVED))
    sources.fail = {"2026-10-03"}
    clock = Clock(NOW)
    first = daemons(clock)
    tick(first, clock)
    settle(first)
    first.shutdown()
    assert 'project = OPS AND resolved <= "2026-10-03"' in past(sources, "jira")
    asked = len(sources.asked)
    clock.now += 2 * 3600  # still Oct 10: the KR is due again and measured live
    second = daemons(clock)
    tick(second, clock)
    settle(second)
    assert sources.asked[asked:] == [("jira", f'project = OPS AND resolved <= "{TODAY}"')]
    assert [r["kind"] for r in rows(tmp_path, "resolved")].count("backfill") == 9
    assert second.backfiller.seen == {"2026-Q4": {"resolved"}}


def test_a_kr_added_by_a_reload_is_backfilled_and_the_others_are_not_again(
    tmp_path: Path,
    sources: Sources,
    httpserver: HTTPServer,
    daemons: Callable[[Clock], Daemon],
) -> None:
    """Per KR `backfill: true` (the default off): the KR a hot reload adds is backfilled
    after the reload's first tick; the one backfilled before is not asked again."""
    on = RESOLVED.replace("start: 0,", "start: 0, backfill: true,")
    path = tmp_path / "okrs.yaml"
    path.write_text(config(httpserver, on, defaults="every: 1h"))
    clock = Clock(NOW)
    daemon = daemons(clock)
    tick(daemon, clock)
    settle(daemon)
    assert len(past(sources, "jira")) == 9 and past(sources, "github") == []
    added = MERGED.replace("start: 0,", "start: 0, backfill: true,")
    path.write_text(config(httpserver, on, added, OPEN_NOW, defaults="every: 1h"))
    assert daemon.reload() is True
    tick(daemon, clock)
    settle(daemon)
    assert len(past(sources, "github")) == 9
    assert len(past(sources, "jira")) == 9  # `resolved` is not backfilled twice
    assert [r["measured_at"][:19] for r in rows(tmp_path, "merged")[1:]] == DAYS
    assert points(daemon, "merged") == 'okrsync_backfill_points_total{kr="merged"} 10.0'


def test_a_skipped_kr_is_logged_once_and_backfilled_once_a_reload_fixes_its_query(
    tmp_path: Path,
    sources: Sources,
    httpserver: HTTPServer,
    daemons: Callable[[Clock], Daemon],
    events: list[MutableMapping[str, Any]],
) -> None:
    """A KR whose query names no day is skipped, logged once at info with the reason
    (not again on a reload that leaves it so); fixed by a reload, it is backfilled."""
    path = tmp_path / "okrs.yaml"
    path.write_text(config(httpserver, OPEN_NOW))
    clock = Clock(NOW)
    daemon = daemons(clock)
    tick(daemon, clock)
    settle(daemon)
    path.write_text(config(httpserver, OPEN_NOW, defaults="every: 2h, backfill: true"))
    assert daemon.reload() is True
    tick(daemon, clock)
    settle(daemon)
    skipped = [e for e in events if e["event"] == "backfill_skipped"]
    assert [(e["kr"], e["log_level"]) for e in skipped] == [("open-now", "info")]
    assert "{now}" in skipped[0]["reason"]
    assert past(sources, "jira") == []
    fixed = OPEN_NOW.replace('EMPTY"', "EMPTY AND created <= '{now}'\"")
    path.write_text(config(httpserver, fixed))
    assert daemon.reload() is True
    tick(daemon, clock)
    settle(daemon)
    assert len(past(sources, "jira")) == 9
    assert points(daemon, "open-now") == 'okrsync_backfill_points_total{kr="open-now"} 10.0'


def test_backfill_is_off_by_default(
    tmp_path: Path,
    sources: Sources,
    httpserver: HTTPServer,
    daemons: Callable[[Clock], Daemon],
) -> None:
    """Without `backfill: true` the daemon measures live only: no past day is asked."""
    (tmp_path / "okrs.yaml").write_text(config(httpserver, RESOLVED, MERGED, defaults="every: 1h"))
    clock = Clock(NOW)
    daemon = daemons(clock)
    tick(daemon, clock)
    assert daemon.backfiller.thread is None  # none was started
    settle(daemon)
    assert len(sources.asked) == 2
    assert past(sources, "jira") == [] and past(sources, "github") == []
    assert [r["backfilled"] for r in rows(tmp_path, "resolved")] == [0]
    assert points(daemon, "resolved") is None


def test_a_stop_stops_the_backfill_within_the_grace(
    tmp_path: Path,
    sources: Sources,
    httpserver: HTTPServer,
    daemons: Callable[[Clock], Daemon],
) -> None:
    """SIGTERM's shutdown stops a backfill whose source hangs: the daemon stops within its
    grace, the backfill thread ends, the KR keeps its live value and no partial backfill;
    the request left hanging counts as abandoned (its thread must not hold up the exit)."""
    (tmp_path / "okrs.yaml").write_text(config(httpserver, RESOLVED))
    release = threading.Event()
    sources.held = (TODAY, release)
    clock = Clock(NOW)
    daemon = daemons(clock)
    try:
        tick(daemon, clock)
        deadline = time.monotonic() + 10
        while not past(sources, "jira") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert past(sources, "jira"), "the backfill never asked"
        began = time.monotonic()
        assert daemon.shutdown() is True  # a request left in flight: the CLI exits hard
        assert time.monotonic() - began < daemon.opts.grace
        assert daemon.backfiller.thread is None
    finally:
        release.set()
    assert [r["backfilled"] for r in rows(tmp_path, "resolved")] == [0]


def test_a_failing_backfill_logs_a_warning_and_the_daemon_goes_on(
    tmp_path: Path,
    sources: Sources,
    httpserver: HTTPServer,
    daemons: Callable[[Clock], Daemon],
    events: list[MutableMapping[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug in a backfill is a warning: the live value stays, the next tick still runs."""
    from okrsync.service import background_backfill

    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(background_backfill, "execute", broken)
    (tmp_path / "okrs.yaml").write_text(config(httpserver, RESOLVED))
    clock = Clock(NOW)
    daemon = daemons(clock)
    tick(daemon, clock)
    settle(daemon)
    (failed,) = [e for e in events if e["event"] == "backfill_failed"]
    assert failed["log_level"] == "warning" and "boom" in failed["error"]
    assert daemon.obs["resolved"].error is None and daemon.obs["resolved"].value == 27
    clock.now += 3600 + JITTER
    daemon.tick()
    wait(set(daemon.futures), timeout=10)
    assert [r["backfilled"] for r in rows(tmp_path, "resolved")] == [0, 0]


def test_a_kr_inherits_backfill_and_it_is_no_part_of_its_definition(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    """`backfill` per KR overrides the default; switching it changes no KR's definition
    (what `plan` compares and the store keeps)."""
    off = MERGED.replace("start: 0,", "start: 0, backfill: false,")
    (tmp_path / "okrs.yaml").write_text(config(httpserver, RESOLVED, off))
    loaded = load(tmp_path / "okrs.yaml")
    resolved, merged = (kr for _, kr in loaded.key_results())
    assert loaded.backfills(resolved) is True and loaded.backfills(merged) is False
    assert "backfill" not in loaded.definition(merged)
    (tmp_path / "okrs.yaml").write_text(config(httpserver, RESOLVED, MERGED, defaults="every: 1h"))
    plain = load(tmp_path / "okrs.yaml")
    assert not any(plain.backfills(kr) for _, kr in plain.key_results())
    assert plain.definition(merged) == loaded.definition(merged)


def test_a_reload_that_turns_backfill_off_stops_the_running_one(
    tmp_path: Path,
    sources: Sources,
    httpserver: HTTPServer,
    daemons: Callable[[Clock], Daemon],
) -> None:
    """A backfill of a config that a reload replaces stops between KRs, even when the new
    config backfills nothing: no values of the old one are stored after it."""
    path = tmp_path / "okrs.yaml"
    path.write_text(config(httpserver, RESOLVED))
    release = threading.Event()
    sources.held = (TODAY, release)
    clock = Clock(NOW)
    daemon = daemons(clock)
    try:
        tick(daemon, clock)
        deadline = time.monotonic() + 10
        while not past(sources, "jira") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert past(sources, "jira"), "the backfill never asked"
        path.write_text(config(httpserver, RESOLVED, defaults="every: 1h"))
        assert daemon.reload() is True
        daemon.tick()
        settle(daemon, timeout=5)  # while the source still hangs
    finally:
        release.set()
    assert [r["backfilled"] for r in rows(tmp_path, "resolved")] == [0]
