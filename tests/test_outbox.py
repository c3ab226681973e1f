"""The outbox: deliveries are written with their measurement, only for changes (unless
push_unchanged), and the store migrates older files to hold them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from okrsync.cli.main import main
from okrsync.config.loader import load
from okrsync.config.sinks import PushTarget
from okrsync.measure.measurement import Measurement
from okrsync.progress.definitions import from_config
from okrsync.sinks.enqueue import enqueue, prepare
from okrsync.store.store import Store

NOW = datetime(2026, 11, 2, 12, tzinfo=UTC)
CONFIG = """\
period: {{name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}}
defaults: {{push_unchanged: {unchanged}}}
sinks:
  okr-portal: {{type: webhook, url: "http://127.0.0.1:9/hook", timeout: 2}}
  audit: {{type: webhook, url: "http://127.0.0.1:9/audit"}}
objectives:
  - id: o
    title: O
    key_results:
      - id: a
        source: manual
        target: 10
        push: [okr-portal, {{sink: audit, id: x-1}}]
      - {{id: b, source: manual, start: 0, target: 10, push: [okr-portal], push_unchanged: true}}
      - {{id: c, source: manual, start: 0, target: 10}}
"""


def write(tmp_path: Path, unchanged: bool = False) -> Path:
    path = tmp_path / "okrs.yaml"
    path.write_text(CONFIG.format(unchanged=str(unchanged).lower()))
    return path


def checkin(
    tmp_path: Path, db: str, kr: str, value: str, when: str = "2026-11-02T12:00:00Z"
) -> None:
    cfg = str(tmp_path / "okrs.yaml")
    assert main(["checkin", kr, value, "--now", when, "--config", cfg, "--db", db]) == 0


def rows(db: str) -> list[dict[str, object]]:
    store = Store(db)
    try:
        return [dict(r) for r in store.db.query("SELECT * FROM deliveries ORDER BY id")]
    finally:
        store.close()


def test_sinks_and_push_targets_load(tmp_path: Path) -> None:
    """`sinks:` and per-KR `push:` (a bare name or {sink, id}) load as typed models."""
    config = load(write(tmp_path))
    assert config.sinks["okr-portal"].timeout == 2 and config.sinks["audit"].timeout == 10
    found = config.find_kr("a")
    assert found is not None
    assert found[1].push == ["okr-portal", PushTarget(sink="audit", id="x-1")]


def test_only_changes_are_enqueued_per_sink(tmp_path: Path, db_url: str) -> None:
    """A check-in enqueues one delivery per sink; the same value again enqueues nothing,
    a new value does; a KR without `push` never does."""
    write(tmp_path)
    checkin(tmp_path, db_url, "a", "3")
    checkin(tmp_path, db_url, "a", "3", "2026-11-02T13:00:00Z")
    checkin(tmp_path, db_url, "a", "4", "2026-11-02T14:00:00Z")
    checkin(tmp_path, db_url, "c", "4")
    found = [(r["kr_id"], r["sink"], json.loads(str(r["payload"]))["value"]) for r in rows(db_url)]
    assert found == [
        ("a", "okr-portal", 3.0),
        ("a", "audit", 3.0),
        ("a", "okr-portal", 4.0),
        ("a", "audit", 4.0),
    ]
    keys = [r["idempotency_key"] for r in rows(db_url)]
    assert len(set(keys)) == 4 and all(r["state"] == "pending" for r in rows(db_url))


def test_push_unchanged_on_kr_or_defaults_pushes_every_value(tmp_path: Path, db_url: str) -> None:
    """`push_unchanged: true` on the KR (b) or in defaults (a) enqueues repeated values."""
    write(tmp_path, unchanged=True)
    checkin(tmp_path, db_url, "a", "3")
    checkin(tmp_path, db_url, "a", "3", "2026-11-02T13:00:00Z")
    checkin(tmp_path, db_url, "b", "5")
    checkin(tmp_path, db_url, "b", "5", "2026-11-02T13:00:00Z")
    assert [(r["kr_id"], r["sink"]) for r in rows(db_url)] == [
        ("a", "okr-portal"),
        ("a", "audit"),
        ("a", "okr-portal"),
        ("a", "audit"),
        ("b", "okr-portal"),
        ("b", "okr-portal"),
    ]


def test_payload_carries_the_measurement_and_the_objective_progress(
    tmp_path: Path, db_url: str
) -> None:
    """The JSON names KR, objective, period, value, start/target/unit, progress, status,
    provenance and the objective's rolled-up progress."""
    write(tmp_path)
    checkin(tmp_path, db_url, "c", "10")
    checkin(tmp_path, db_url, "a", "5")
    body = json.loads(str(rows(db_url)[0]["payload"]))
    assert body["kr_id"] == "a" and body["objective_id"] == "o" and body["period"] == "2026-Q4"
    assert (body["value"], body["start"], body["target"], body["progress"]) == (5, 0, 10, 0.5)
    assert body["source"] == "manual" and body["measured_at"] == "2026-11-02T12:00:00.000000Z"
    assert body["objective_progress"] == pytest.approx(0.75)  # a 0.5 and c 1.0
    assert body["status"] and "query" in body


def test_deliveries_commit_with_their_measurement_or_not_at_all(
    tmp_path: Path, db_url: str
) -> None:
    """A transaction that fails after enqueueing leaves neither measurement nor delivery."""
    config = load(write(tmp_path))
    defs = from_config(config)
    store = Store(db_url)
    m = Measurement("a", NOW, "manual", None, 3.0, 0.3, "off_track", manual=True)
    with pytest.raises(RuntimeError), store.transaction():
        ids = store.append(None, [m], "2026-Q4")
        assert enqueue(store, prepare(config, defs, [m], {}), ids, NOW) == 2
        raise RuntimeError("crash before commit")
    assert store.outbox.listing() == []
    assert store.history("a") == []
    failed = Measurement("a", NOW, "manual", None, error="boom")
    with store.transaction():
        ids = store.append(None, [failed], "2026-Q4")
        assert (
            enqueue(store, prepare(config, defs, [failed], {}), ids, NOW) == 0
        )  # no value: nothing
    store.close()


def test_a_v2_store_is_migrated_to_hold_the_outbox(tmp_path: Path) -> None:
    """A store of schema 2 gets the deliveries table on its first write."""
    import sqlite3

    from okrsync.store.schema import MIGRATIONS

    path = tmp_path / "x.db"
    conn = sqlite3.connect(path)
    import sqlite_utils

    db = sqlite_utils.Database(conn)
    MIGRATIONS[1](db)
    MIGRATIONS[2](db)
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    store = Store(path)
    assert store.outbox.listing() == [] and "deliveries" in store.db.tables()
    store.close()


def test_a_late_check_in_for_an_earlier_period_goes_only_where_history_is_kept(
    tmp_path: Path, db_url: str
) -> None:
    """`checkin --period 2026-Q3` in Q4: the webhook (it keeps every value) gets it; the
    okr-tracker (it keeps the latest) does not, and its pending Q4 value is not superseded."""
    sinks = (
        "sinks:\n"
        '  hook: {type: webhook, url: "http://127.0.0.1:9/hook"}\n'
        '  tracker: {type: okr-tracker, url: "http://127.0.0.1:9/api"}\n'
    )
    kr = "objectives: [{id: o, title: O, key_results: [{id: a, source: manual, target: 10, "
    kr += 'push: [hook, {sink: tracker, id: "kr-1"}]}]}]\n'
    path, db = tmp_path / "okrs.yaml", db_url
    base = ["--config", str(path), "--db", db, "checkin", "a"]
    path.write_text("period: {name: 2026-Q3, start: 2026-07-01, end: 2026-09-30}\n" + sinks + kr)
    assert main([*base, "3", "--now", "2026-09-01T12:00:00Z"]) == 0
    path.write_text("period: {name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}\n" + sinks + kr)
    assert main([*base, "6", "--now", "2026-11-02T12:00:00Z"]) == 0
    assert main([*base, "4", "--now", "2026-11-03T12:00:00Z", "--period", "2026-Q3"]) == 0
    late = [(r["sink"], r["state"]) for r in rows(db_url) if r["measurement_id"] == 3]
    assert late == [("hook", "pending")]
    tracker = [(r["measurement_id"], r["state"]) for r in rows(db_url) if r["sink"] == "tracker"]
    assert tracker == [(1, "superseded"), (2, "pending")]
