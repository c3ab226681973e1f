"""`okrsync store copy`: SQLite to PostgreSQL and back, the same answers after; an empty
target only; one target transaction, so an interrupted or miscounted copy leaves it empty."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from clock import pin_cli_clock

from okrsync.cli.main import main
from okrsync.errors import StoreError
from okrsync.store import copy as copying
from okrsync.store.store import Store

CONFIG = """\
period: {name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}
sinks:
  hook: {type: webhook, url: "http://127.0.0.1:9/hook"}
objectives:
  - id: o
    title: O
    key_results:
      - {id: a, source: manual, target: 10, push: [hook]}
      - {id: b, source: manual, target: 4}
"""


@pytest.fixture
def filled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SQLite store with check-ins, deliveries and a period, in a config'd cwd."""
    pin_cli_clock(monkeypatch)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "okrs.yaml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    for day, (a, b) in enumerate([(1, 1), (3, 2), (6, 2), (7, 3)], start=10):
        assert main(["checkin", "a", str(a), "--now", f"2026-11-{day}T08:00:00Z"]) == 0
        assert main(["checkin", "b", str(b), "--now", f"2026-11-{day}T09:00:00Z"]) == 0
    return tmp_path / "okrsync.db"


def answers(capsys: pytest.CaptureFixture[str], db: str) -> list[Any]:
    """What status, history and deliveries say about the store at `db`."""
    seen = []
    for argv in (["status", "--json"], ["history", "a", "--json"], ["deliveries", "--json"]):
        capsys.readouterr()
        assert main([*argv, "--db", db]) == 0
        seen.append(json.loads(capsys.readouterr().out))
    return seen


def counts(db: str) -> dict[str, int]:
    store = Store(db, create=False)
    try:
        return {t: copying.count(store, t) for t in copying.tables(store)}
    finally:
        store.close()


def test_sqlite_to_postgres_and_back_answers_the_same(
    filled: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The copy answers every read as the original did, takes new writes (ids after the
    copied ones), and copies back to a new SQLite file the same again."""
    before = answers(capsys, str(filled))
    capsys.readouterr()
    assert main(["store", "copy", str(filled), postgres_url]) == 0
    out = capsys.readouterr().out
    assert "verified" in out and "measurements" in out and "8 rows" in out
    assert answers(capsys, postgres_url) == before
    assert counts(postgres_url) == counts(str(filled))
    back = str(filled.parent / "back.db")
    assert main(["store", "copy", postgres_url, f"sqlite:///{back}"]) == 0
    assert answers(capsys, back) == before
    assert main(["checkin", "a", "9", "--now", "2026-11-20T08:00:00Z", "--db", postgres_url]) == 0
    history = answers(capsys, postgres_url)[1]
    assert [r["value"] for r in history][:2] == [9, 7]
    assert history[0]["id"] > max(r["id"] for r in before[1])


def test_a_target_with_rows_is_refused_and_left_alone(
    filled: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["store", "copy", str(filled), db_url]) == 0
    held = counts(db_url)
    capsys.readouterr()
    assert main(["store", "copy", str(filled), db_url]) == 2
    err = capsys.readouterr().err
    assert "already holds okrsync rows" in err and "8 measurements" in err
    assert counts(db_url) == held


def test_an_interrupted_copy_leaves_the_target_empty_to_run_again(
    filled: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C half-way through the measurements: nothing is kept; the next copy works."""
    monkeypatch.setattr(copying, "BATCH", 3)
    source, target = Store(filled, create=False), Store(db_url)

    def interrupt(table: str, copied: int, done: int, total: int) -> None:
        if table == "measurements" and copied >= 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        copying.copy(source, target, interrupt)
    assert not any(counts(db_url).values())
    assert [c.target for c in copying.copy(source, target)] == list(counts(str(filled)).values())
    source.close()
    target.close()


def test_a_row_lost_on_the_way_fails_the_copy_and_keeps_nothing(
    filled: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = Store(filled, create=False), Store(db_url)
    write = target.db.executemany

    def lossy(sql: str, rows: Any) -> None:
        rows = list(rows)
        write(sql, rows[:-1] if "measurements" in sql else rows)

    monkeypatch.setattr(target.db, "executemany", lossy)
    with pytest.raises(StoreError, match=r"row counts differ \(measurements: 8 in the source, 7"):
        copying.copy(source, target)
    assert not any(counts(db_url).values())
    source.close()
    target.close()


def test_nothing_to_copy_or_the_same_store_twice_is_exit_2(
    tmp_path: Path, filled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["store", "copy", str(tmp_path / "typo.db"), str(tmp_path / "new.db")]) == 2
    assert "nothing to copy" in capsys.readouterr().err
    assert not (tmp_path / "new.db").exists()
    assert main(["store", "copy", str(filled), f"sqlite:///{filled}"]) == 2
    assert main(["store"]) == 2


def test_a_copy_takes_the_source_as_of_one_moment(
    filled: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check-in written to the source while the copy runs is not half-copied: the copy
    is of the store as it was when it began, and verifies against that."""
    monkeypatch.setattr(copying, "BATCH", 2)
    source, target = Store(filled, create=False), Store(db_url)
    wrote: list[int] = []

    def meanwhile(table: str, copied: int, done: int, total: int) -> None:
        if not wrote:
            wrote.append(main(["checkin", "a", "9", "--now", "2026-11-20T08:00:00Z"]))

    result = copying.copy(source, target, meanwhile)
    source.close()
    target.close()
    assert wrote == [0]
    assert {c.table: c.target for c in result}["measurements"] == 8
    assert counts(str(filled))["measurements"] == 9 and counts(db_url)["measurements"] == 8
