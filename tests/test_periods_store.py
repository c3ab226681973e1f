"""Periods in the store: the migration from a store without them, adoption of old rows,
stored definitions, and the scores and grades computed from them."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlite_utils

from okrsync.cli.main import main
from okrsync.config.loader import load
from okrsync.config.model import Grading
from okrsync.progress.grading import grade, kr_score, mean_score, round_score
from okrsync.store.schema import MIGRATIONS
from okrsync.store.store import SCHEMA_VERSION, Store

Q4 = "period: {name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}\n"
Q1 = "period: {name: 2027-Q1, start: 2027-01-01, end: 2027-03-31}\n"
OBJECTIVES = """\
objectives:
  - id: o
    title: O
    key_results:
      - {id: a, source: manual, start: 0, target: 10}
"""


def v1_store(path: Path, rows: list[tuple[str, str, float]]) -> None:
    """A store as okrsync wrote it before periods (schema version 1), holding `rows`."""
    db = sqlite_utils.Database(path)
    MIGRATIONS[1](db)
    db.execute("PRAGMA user_version = 1")
    db.table("measurements").insert_all(
        {"kr_id": k, "measured_at": at, "value": v, "status": "on_track", "manual": 1}
        for k, at, v in rows
    )
    db.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def old(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A chdir'd directory with a Q4 config and a version-1 store of Q3 and Q4 values."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "okrs.yaml").write_text(Q4 + OBJECTIVES)
    v1_store(
        tmp_path / "okrsync.db",
        [("a", "2026-09-20T00:00:00.000000Z", 9.0), ("a", "2026-11-01T00:00:00.000000Z", 3.0)],
    )
    return tmp_path


def test_status_reads_an_old_store_without_changing_it(
    old: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """status on a version-1 store: the Q4 value counts, the Q3 one does not, the file stays
    at version 1 (read through a migrated copy in memory)."""
    before = (old / "okrsync.db").read_bytes()
    code, out, err = run(capsys, "status", "--json", "--now", "2026-12-01")
    assert code == 0, err
    kr = json.loads(out)["objectives"][0]["key_results"][0]
    assert kr["value"] == 3.0 and kr["progress"] == pytest.approx(0.3)
    assert (old / "okrsync.db").read_bytes() == before


def test_a_writing_command_migrates_and_adopts_rows_within_the_period(
    old: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """checkin migrates the store to the current version and assigns the old Q4 row to
    2026-Q4; the Q3 row has no known period and stays unassigned (counted nowhere)."""
    code, _, err = run(capsys, "checkin", "a", "5", "--now", "2026-12-01")
    assert code == 0, err
    conn = sqlite3.connect(old / "okrsync.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    periods = dict(conn.execute("SELECT measured_at, period FROM measurements").fetchall())
    assert periods == {
        "2026-09-20T00:00:00.000000Z": None,
        "2026-11-01T00:00:00.000000Z": "2026-Q4",
        "2026-12-01T00:00:00.000000Z": "2026-Q4",
    }


def test_each_period_keeps_its_own_definitions(tmp_path: Path, db_url: str) -> None:
    """The store keeps the targets a period had: rolling over to Q1 with a new target
    leaves Q4's definitions as they were."""
    cfg = tmp_path / "c.yaml"
    store = Store(db_url)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    cfg.write_text(Q4 + OBJECTIVES.replace("target: 10", "target: 10, kind: committed"))
    with store.transaction():
        store.sync_config(load(cfg), now)
    cfg.write_text(Q1 + OBJECTIVES.replace("target: 10", "target: 30"))
    with store.transaction():
        store.sync_config(load(cfg), datetime(2027, 1, 2, tzinfo=UTC))
    q4, q1 = store.definitions("2026-Q4"), store.definitions("2027-Q1")
    assert q4 is not None and q1 is not None
    assert [(k.target, k.kind) for k in q4.key_results()] == [(10, "committed")]
    assert [(k.target, k.kind) for k in q1.key_results()] == [(30, "aspirational")]
    assert [p.name for p in store.periods()] == ["2026-Q4", "2027-Q1"]
    assert store.definitions("2026-Q3") is None


@pytest.mark.parametrize(
    ("raw", "score"),
    [(0.625, 0.63), (0.57, 0.57), (1.7, 1.0), (-0.2, 0.0), (0.699999, 0.7), (None, None)],
)
def test_a_kr_score_is_clamped_and_rounded_half_up(raw: float | None, score: float) -> None:
    assert kr_score(raw) == score


def test_grades_follow_the_bands() -> None:
    """Aspirational good >= 0.7, fair >= 0.4, else poor; committed met only at the bar."""
    bands = Grading()
    assert [grade(s, "aspirational", bands) for s in (0.7, 0.69, 0.4, 0.39)] == [
        "good",
        "fair",
        "fair",
        "poor",
    ]
    assert [grade(s, "committed", bands) for s in (1.0, 0.99)] == ["met", "missed"]
    strict = Grading.model_validate({"aspirational": {"good": 0.8}, "committed": {"met": 0.9}})
    assert grade(0.75, "aspirational", strict) == "fair"
    assert grade(0.9, "committed", strict) == "met"
    assert grade(None, "committed", bands) is None


def test_an_objective_score_is_the_weighted_mean_of_scored_items() -> None:
    """(0.4 x 3 + 0.25 x 1) / 4 = 0.3625 -> 0.36; items without a score do not count."""
    assert mean_score([(0.4, 3), (0.25, 1), (None, 5)]) == 0.36
    assert mean_score([(None, 1)]) is None
    assert round_score(0.125) == 0.13
