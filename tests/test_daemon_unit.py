"""The daemon in-process with scripted connectors: ticks, lanes, reloads, no subprocess."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, MutableMapping
from concurrent.futures import wait
from pathlib import Path
from typing import Any

import pytest
import structlog.testing
from clock import running_period
from fakes import ScriptedConnector, factory

from okrsync.connector import QueryBase, Reading, Window
from okrsync.service.daemon import Daemon
from okrsync.service.options import Options

CONFIG = (
    running_period("Q4")
    + """\
defaults: {every: 1m}
sources:
  jira: {type: prometheus, url: "http://127.0.0.1:1"}
  slow: {type: prometheus, url: "http://127.0.0.1:2"}
objectives:
  - id: o
    title: O
    key_results:
      - {id: open-bugs, source: jira, query: "project = X", target: 0, start: 10}
      - {id: open-bugs-copy, source: jira, query: "project = X", target: 0, start: 20}
      - {id: slowpoke, source: slow, query: s, target: 1}
"""
)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Blocking(ScriptedConnector):
    """A connector whose every fetch waits until the test releases it."""

    def __init__(self) -> None:
        super().__init__({"s": 1})
        self.release = threading.Event()
        self.entered = threading.Event()

    def fetch(self, query: QueryBase, window: Window) -> Reading:
        self.entered.set()
        assert self.release.wait(10)
        return super().fetch(query, window)


@pytest.fixture(autouse=True)
def events() -> Iterator[list[MutableMapping[str, Any]]]:
    """The log events of the test (and no dependence on how other tests set up logging)."""
    with structlog.testing.capture_logs() as captured:
        yield captured


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[Daemon, dict[str, ScriptedConnector], Blocking]]:
    (tmp_path / "okrs.yaml").write_text(CONFIG)
    blocking = Blocking()
    conns: dict[str, ScriptedConnector] = {"jira": ScriptedConnector({"project = X": 4})}
    conns["slow"] = blocking
    clock = Clock()
    daemon = Daemon(
        Options(tmp_path / "okrs.yaml", tmp_path / "okrsync.db", listen=None),
        clock=clock,
        factory=factory(conns),
    )
    daemon.start()
    clock.now += 7  # past the jitter window (10% of 1m)
    yield daemon, conns, blocking
    blocking.release.set()
    daemon.shutdown()


def test_identical_queries_due_together_cost_one_request(
    parts: tuple[Daemon, dict[str, ScriptedConnector], Blocking],
) -> None:
    """Two KRs with the same query, due in the same tick, share one fetch and both store."""
    daemon, conns, blocking = parts
    assert daemon.schedule.due["open-bugs"] == daemon.schedule.due["open-bugs-copy"]
    daemon.tick()
    blocking.release.set()
    wait(set(daemon.futures), timeout=10)
    assert conns["jira"].asked == ["project = X"]
    assert [r["value"] for r in daemon.store.history("open-bugs")] == [4]
    assert [r["value"] for r in daemon.store.history("open-bugs-copy")] == [4]
    assert daemon.obs["open-bugs"].value == 4


def test_a_slow_source_does_not_hold_up_the_others(
    parts: tuple[Daemon, dict[str, ScriptedConnector], Blocking],
) -> None:
    """While one source hangs, KRs of another source are measured and stored."""
    daemon, _, blocking = parts
    daemon.tick()
    assert blocking.entered.wait(5)
    deadline = time.monotonic() + 10  # a bound for a hang, not a timing assertion

    def stored(kr: str) -> list[dict[str, Any]]:
        with daemon.store_lock:  # the daemon's batch threads share this connection
            return daemon.store.history(kr)

    while not stored("open-bugs") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stored("open-bugs")
    assert stored("slowpoke") == []
    assert "slowpoke" in daemon.schedule.running  # not handed out again meanwhile
    blocking.release.set()
    wait(set(daemon.futures), timeout=10)
    assert [r["value"] for r in daemon.store.history("slowpoke")] == [1]
    assert "slowpoke" in daemon.schedule.due


def test_an_invalid_reload_keeps_the_running_config(
    parts: tuple[Daemon, dict[str, ScriptedConnector], Blocking],
    events: list[MutableMapping[str, Any]],
) -> None:
    """A broken file is rejected with file:line problems; the last good config stays active."""
    daemon, _, _ = parts
    running = daemon.active
    assert running is not None
    daemon.opts.config.write_text(CONFIG.replace("target: 1}", "target: 1, every: soon}"))
    assert daemon.reload() is False
    assert daemon.active is running
    assert daemon.health.reload_ok is False and daemon.health.digest == running.config.digest
    assert daemon.health.problems == [
        f"{daemon.opts.config}:12: objectives[0].key_results[2].every: "
        "'soon' is not a duration: write e.g. 30s, 5m, 1h, 1d"
    ]
    assert daemon.health.healthz()["status"] == "ok" and daemon.health.readyz()["ready"]
    logged = [e for e in events if e["event"] == "config_problem"]
    assert [e["problem"] for e in logged] == daemon.health.problems
    assert logged[0]["log_level"] == "error"


def test_a_valid_reload_schedules_new_krs_and_retires_removed_ones(
    parts: tuple[Daemon, dict[str, ScriptedConnector], Blocking],
) -> None:
    """New KRs are due at once, removed ones leave the schedule and are marked retired."""
    daemon, _, _ = parts
    text = CONFIG.replace("      - {id: slowpoke, source: slow, query: s, target: 1}\n", "")
    text += '      - {id: fresh, source: jira, query: "project = Y", target: 5}\n'
    daemon.opts.config.write_text(text)
    assert daemon.reload() is True
    assert set(daemon.schedule.due) == {"open-bugs", "open-bugs-copy", "fresh"}
    assert daemon.schedule.due["fresh"] <= daemon.clock() + 6
    assert daemon.store.known_kr("slowpoke")["retired_at"] is not None  # type: ignore[index]
    assert daemon.health.reload_ok and daemon.health.digest == daemon.active.config.digest  # type: ignore[union-attr]


def test_signal_handlers_only_set_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM and SIGHUP handlers log nothing and take no locks (that could deadlock the
    interrupted main thread); the loop logs the signal afterwards."""
    import os
    import signal

    from okrsync.service import daemon as daemon_module
    from okrsync.service import serve as service

    class NoLogging:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"log.{name} called inside a signal handler")

    monkeypatch.setattr(service, "log", NoLogging())
    monkeypatch.setattr(daemon_module, "log", NoLogging())
    (tmp_path / "okrs.yaml").write_text(CONFIG)
    daemon = Daemon(Options(tmp_path / "okrs.yaml", tmp_path / "db", listen=None))
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        service.install_signals(daemon)
        os.kill(os.getpid(), signal.SIGHUP)
        os.kill(os.getpid(), signal.SIGTERM)
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)
    assert daemon.stopping and daemon.reload_wanted
    assert daemon.signals == ["SIGHUP", "SIGTERM"]
