"""The OKR store: schema version, WAL, retirement, and one-line errors for bad databases."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from okrsync.config.loader import load
from okrsync.config.model import Period
from okrsync.errors import StoreError
from okrsync.measure.measurement import Measurement
from okrsync.store.store import SCHEMA_VERSION, Store

NOW = datetime(2026, 11, 15, tzinfo=UTC)
PERIOD = Period(name="Q", start=date(2026, 10, 1), end=date(2026, 12, 31))
BASE = """\
period: {name: Q, start: 2026-10-01, end: 2026-12-31}
objectives:
  - id: o
    title: O
    key_results:
      - {id: a, source: manual, target: 10}
"""


def test_new_store_has_schema_version_and_wal(tmp_path: Path) -> None:
    """A new store records its schema version and uses WAL mode."""
    store = Store(tmp_path / "new" / "okrsync.db")
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"objectives", "key_results", "runs", "measurements"} <= store.db.tables()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database written by a newer okrsync is refused with a one-line error."""
    path = tmp_path / "db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    newer = rf"schema version {SCHEMA_VERSION + 1}, newer than .* upgrade okrsync"
    with pytest.raises(StoreError, match=newer):
        Store(path)


def test_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    """A file that is not SQLite gives a one-line error, not a traceback."""
    path = tmp_path / "db"
    path.write_text("hello, this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not an okrsync database"):
        Store(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_database_is_a_store_error(tmp_path: Path) -> None:
    """Writing to a read-only database is a one-line error."""
    path = tmp_path / "db"
    Store(path).close()
    path.chmod(0o444)
    store = Store(path)
    with pytest.raises(StoreError, match="read-only"), store.transaction():
        store.append(None, [Measurement("a", NOW, "manual", None, 1.0)], "Q")


def test_locked_database_is_a_store_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database locked by another writer gives a clear error after the lock timeout."""
    monkeypatch.setattr("okrsync.store.errors.LOCK_TIMEOUT", 0.1)
    path = tmp_path / "db"
    Store(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    store = Store(path)
    try:
        with pytest.raises(StoreError, match="locked by another process"), store.transaction():
            store.append(None, [Measurement("a", NOW, "manual", None, 1.0)], "Q")
    finally:
        other.execute("ROLLBACK")
    assert store.history("a") == []


def test_removed_kr_is_retired_and_keeps_history(tmp_path: Path, db_url: str) -> None:
    """A KR removed from config is marked retired; its history stays readable."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(BASE)
    store = Store(db_url)
    with store.transaction():
        store.sync_config(load(cfg), NOW)
        store.append(None, [Measurement("a", NOW, "manual", None, 4.0, manual=True)], "Q")
    cfg.write_text(BASE.replace("id: a,", "id: b,"))
    with store.transaction():
        store.sync_config(load(cfg), NOW + timedelta(hours=1))
    retired = store.known_kr("a")
    assert retired is not None and retired["retired_at"] == "2026-11-15T01:00:00.000000Z"
    assert store.known_kr("b") is not None and store.known_kr("b")["retired_at"] is None  # type: ignore[index]
    assert [h["value"] for h in store.history("a")] == [4.0]


def test_observations_are_as_of_now(tmp_path: Path, db_url: str) -> None:
    """Observations take the latest value and attempt at or before `now`, not after."""
    store = Store(db_url)
    rows = [
        Measurement("a", NOW, "s", "q", 1.0),
        Measurement("a", NOW + timedelta(days=1), "s", "q", None, error="boom"),
        Measurement("a", NOW + timedelta(days=2), "s", "q", 3.0),
    ]
    with store.transaction():
        store.append("r", rows, "Q")
    assert store.observations(["a"], NOW - timedelta(seconds=1), PERIOD) == {}
    day1 = store.observations(["a"], NOW + timedelta(days=1, hours=1), PERIOD)["a"]
    assert (day1.value, day1.error, day1.measured_at) == (1.0, "boom", NOW)
    assert store.observations(["a"], NOW + timedelta(days=3), PERIOD)["a"].value == 3.0


def test_read_only_error_text_from_sqlite_maps_to_a_clear_message(tmp_path: Path) -> None:
    """SQLite's own read-only error (from a mode=ro connection) becomes the read-only message."""
    from okrsync.store.errors import store_error

    path = tmp_path / "db"
    Store(path).close()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as info:
        conn.execute("INSERT INTO runs (id) VALUES ('x')")
    assert "read-only" in str(store_error(str(path), info.value))


def test_writer_waits_for_another_writer_instead_of_failing(tmp_path: Path) -> None:
    """A transaction started while another process writes waits for it, then commits."""
    import threading

    path = tmp_path / "db"
    Store(path).close()
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO runs (id, kind) VALUES ('theirs', 'sync')")
    release = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    release.start()
    store = Store(path)
    with store.transaction():
        store.db.execute("SELECT count(*) FROM runs").fetchone()
        store.append(None, [Measurement("a", NOW, "manual", None, 1.0)], "Q")
    release.join()
    assert [h["value"] for h in store.history("a")] == [1.0]
    assert store.db.execute("SELECT count(*) FROM runs").fetchone()[0] == 1


def test_the_latest_run_is_found_by_index_and_keys_need_no_unique_index(tmp_path: Path) -> None:
    """Schema 6: plan's baseline (the latest run) is read through an index, not a scan of
    every run the daemon ever wrote; idempotency keys carry no unique index (nothing looks
    them up; each is 128 random bits)."""
    store = Store(tmp_path / "x.db")
    plan = store.db.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM runs ORDER BY started_at DESC LIMIT 1"
    ).fetchall()
    indexes = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    store.close()
    assert "idx_runs_started_at" in " ".join(str(step[-1]) for step in plan)
    assert "idx_deliveries_idempotency_key" not in indexes
