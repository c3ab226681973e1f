"""Review findings on periods and sinks (branch `review`): each test fails on the bug."""

from __future__ import annotations

import json
import time
from concurrent.futures import wait
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils
from clock import running_period
from fakes import ScriptedConnector, factory
from webhook_receiver import receiving

from okrsync.cli import moment
from okrsync.cli.main import main
from okrsync.service.daemon import Daemon
from okrsync.service.options import Options
from okrsync.store.schema import MIGRATIONS

OBJECTIVES = """\
objectives:
  - id: o
    title: O
    key_results:
      - {id: a, title: A, source: manual, start: 0, target: 10}
"""


def test_sync_once_with_an_ended_period_adopts_old_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """periods.md: old measurements are assigned to the config's period when a writing
    command (sync, checkin, daemon) first runs with a config whose period contains them.
    `sync --once` with an ended period returns before recording the period or adopting."""
    monkeypatch.chdir(tmp_path)
    db = sqlite_utils.Database(tmp_path / "okrsync.db")
    MIGRATIONS[1](db)
    db.execute("PRAGMA user_version = 1")
    db.table("measurements").insert(
        {
            "kr_id": "a",
            "measured_at": "2026-08-01T00:00:00.000000Z",
            "value": 4.0,
            "progress": 0.4,
            "status": "on_track",
            "manual": 1,
            "source": "manual",
        }
    )
    db.close()
    (tmp_path / "q3.yaml").write_text(
        "period: {name: 2026-Q3, start: 2026-07-01, end: 2026-09-30}\n" + OBJECTIVES
    )
    (tmp_path / "q4.yaml").write_text(
        "period: {name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}\n" + OBJECTIVES
    )
    monkeypatch.setattr(moment, "utcnow", lambda: datetime(2026, 12, 1, tzinfo=UTC))
    assert main(["--config", "q3.yaml", "sync", "--once"]) == 0
    capsys.readouterr()
    assert main(["--config", "q4.yaml", "status", "--json", "--period", "2026-Q3"]) == 0
    tree = json.loads(capsys.readouterr().out)
    assert tree["objectives"][0]["key_results"][0]["value"] == 4.0


def test_status_json_as_of_is_the_now_it_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """periods.md: as_of = min(now, period end). While the period runs they are one
    instant; status reads the clock twice (period_tree, then status_json)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "q4.yaml").write_text(
        "period: {name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}\n" + OBJECTIVES
    )
    ticks = iter(datetime(2026, 12, 1, tzinfo=UTC) + timedelta(seconds=i) for i in range(99))
    monkeypatch.setattr(moment, "utcnow", lambda: next(ticks))
    assert main(["--config", "q4.yaml", "status", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["period"]["ended"] is False
    assert out["as_of"] == out["now"]


def test_daemon_sends_a_checkin_delivery_without_waiting_for_a_batch(tmp_path: Path) -> None:
    """README: a crash between measuring and sending loses nothing, the next run sends what
    is pending. The daemon only sends after one of its own batches, so a pending delivery
    (from `checkin`, a crash, or a backoff) of a config with only manual KRs (or an ended
    period, or a 1h interval) is never sent (or only at the next batch)."""
    with receiving() as receiver:
        config = tmp_path / "okrs.yaml"
        config.write_text(
            running_period("Q")
            + f'sinks:\n  portal: {{type: webhook, url: "{receiver.url}", timeout: 2}}\n'
            "objectives:\n  - id: o\n    title: O\n    key_results:\n"
            "      - {id: m, source: manual, start: 0, target: 10, push: [portal]}\n"
        )
        db = tmp_path / "x.db"
        now = datetime.now(UTC).isoformat()
        assert (
            main(["--config", str(config), "--db", str(db), "checkin", "m", "3", "--now", now]) == 0
        )
        clock_now = [time.time()]
        daemon = Daemon(
            Options(config, db, listen=None),
            clock=lambda: clock_now[0],
            factory=factory({"x": ScriptedConnector({})}),
        )
        daemon.start()
        try:
            for _ in range(3):
                clock_now[0] += 120
                daemon.tick()
                wait(set(daemon.futures), timeout=5)
            time.sleep(0.5)
            with daemon.store_lock:
                states = [r["state"] for r in daemon.store.outbox.listing()]
        finally:
            daemon.shutdown()
    assert states == ["delivered"]
    assert len(receiver.delivered()) == 1
