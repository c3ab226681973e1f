"""Periods from the command line: sync outside the period, grade's outputs, start: previous."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from clock import pin_cli_clock

from okrsync.cli.main import main

ENDED = "period: {name: 2026-Q3, start: 2026-07-01, end: 2026-09-30}\n"
FUTURE = "period: {name: 2099-Q1, start: 2099-01-01, end: 2099-03-31}\n"
OBJECTIVES = """\
sources:
  prom: {type: prometheus, url: "http://127.0.0.1:9"}
objectives:
  - id: o
    title: O
    kind: committed
    key_results:
      - {id: up, source: prom, query: up, start: 0, target: 1}
      - {id: notes, source: manual, start: 0, target: 10, kind: aspirational}
      - {id: drills, source: manual, start: previous, target: 8}
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where to write the config; the clock pinned to 2026-11-15, after ENDED, before FUTURE."""
    pin_cli_clock(monkeypatch)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    return tmp_path / "config" / "okrs.yaml"


def rows(path: Path) -> int:
    if not path.exists():
        return 0
    return int(sqlite3.connect(path).execute("SELECT count(*) FROM measurements").fetchone()[0])


@pytest.mark.parametrize(
    ("period", "says"),
    [(ENDED, "the period 2026-Q3 ended on 2026-09-30"), (FUTURE, "starts on 2099-01-01")],
)
def test_sync_outside_the_period_measures_nothing(
    config: Path, capsys: pytest.CaptureFixture[str], period: str, says: str
) -> None:
    """sync --once (and run --once) exits 0, says why, stores no measurement."""
    config.write_text(period + OBJECTIVES)
    for argv in (["sync", "--once"], ["run", "--once"]):
        code, out, _ = run(capsys, *argv)
        assert code == 0 and says in out and "nothing measured" in out
    assert rows(config.parent.parent / "okrsync.db") == 0


def test_validate_accepts_start_previous_and_kinds(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.write_text(ENDED + OBJECTIVES)
    code, _, err = run(capsys, "validate")
    assert code == 0, err
    config.write_text(ENDED + OBJECTIVES.replace("kind: committed", "kind: stretch"))
    code, _, err = run(capsys, "validate")
    assert code == 2 and "okrs.yaml:7: objectives[0].kind: 'stretch' is not one of" in err


def test_grade_of_an_ended_period_in_text_json_and_markdown(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Q3 ended: notes 7/10 = 0.7 good (aspirational); the committed `up` has no value and
    is listed as a committed miss; drills has no previous period, so no score."""
    config.write_text(ENDED + OBJECTIVES)
    code, _, err = run(capsys, "checkin", "notes", "7", "--period", "2026-Q3")
    assert code == 0, err
    code, out, _ = run(capsys, "grade", "--json")
    card = json.loads(out)
    assert card["ended"] is True and card["period"]["name"] == "2026-Q3"
    krs = {k["id"]: k for k in card["objectives"][0]["key_results"]}
    assert (krs["notes"]["score"], krs["notes"]["grade"]) == (0.7, "good")
    assert (krs["up"]["score"], krs["up"]["kind"]) == (None, "committed")
    assert [m["id"] for m in card["committed_misses"]] == ["up", "drills"]
    assert card["average_score"] == 0.7  # the only scored item of the only objective
    code, out, _ = run(capsys, "grade", "--md", "card.md")
    assert code == 0 and "committed misses (2" in out
    markdown = Path("card.md").read_text()
    assert "# Scorecard 2026-Q3" in markdown and "| KR | notes |" in markdown
    code, _, err = run(capsys, "grade", "--json", "--md", "-")
    assert code == 2 and "--md" in err
    code, _, err = run(capsys, "grade", "--period", "1999-Q1")
    assert code == 2 and "known: 2026-Q3 (2026-07-01 to 2026-09-30)" in err


def test_checkin_for_a_kr_without_a_baseline_is_refused(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """start: previous with no previous period: the check-in is exit 2, nothing stored."""
    config.write_text(ENDED + OBJECTIVES)
    code, _, err = run(capsys, "checkin", "drills", "3", "--period", "2026-Q3")
    assert code == 2 and "no value in the previous period" in err
    assert rows(config.parent.parent / "okrsync.db") == 0
