"""`okrsync explain`: where a value came from, for automated, formula and manual KRs,
overrides, --at, unknown KRs, no data and a long history."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from provenance_runs import cli, measure, write_config

VALUES: dict[str, float] = {"up_ratio": 73, "sum(bugs_closed)": 12, "sum(bugs_opened)": 20}


@pytest.fixture
def tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The config measured once on Nov 16 (uptime 73, closure 12 / 20 * 100 = 60)."""
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path)
    measure(tmp_path, "2026-11-16T00:00:00Z", VALUES)
    return tmp_path


def explain(capsys: pytest.CaptureFixture[str], tmp: Path, *argv: str) -> Any:
    code, out, err = cli(capsys, tmp, "explain", *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_an_automated_value_from_source_to_status(
    tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Source, the query sent, Prometheus' raw answer, fetch time and duration, the run and
    config hash, the progress arithmetic and the status rule with the expected progress."""
    r = explain(capsys, tmp, "uptime", "--at", "2026-11-16T12:00:00Z")
    m = r["measurement"]
    assert m["kind"] == "automated" and m["source"] == "prom" and m["query"] == "up_ratio"
    assert m["value"] == 73 and m["checkin"] is None
    assert m["answer"] == {
        "resultType": "vector",
        "series": 1,
        "values": [{"metric": {"job": "api"}, "value": 73.0}],
    }
    assert m["fetched_at"].startswith("2026-11-16T00:00:0")  # on the run's clock
    assert 0 <= m["duration_s"] < 10
    assert len(m["run"]["id"]) == 16 and m["run"]["kind"] == "sync"
    assert m["run"]["config_digest"] and m["run"]["config_commit"] is None
    p = r["progress"]
    assert p["arithmetic"] == "(73 - 50) / (100 - 50) = 0.46"
    assert (p["start"], p["target"], p["raw"]) == (50, 100, pytest.approx(0.46))
    s = r["status"]
    # Nov 16 12:00 is 46.5 of 92 days into the quarter: expected 0.505, 0.46 >= 0.405
    assert s["expected_progress"] == pytest.approx(46.5 / 92)
    assert s["status"] == "on_track"
    assert s["rule"] == "on_track: progress 0.46 >= expected 0.5054 - on_track 0.1 = 0.4054"
    assert s["expected_arithmetic"] == "46.5 of 92 days elapsed = 0.5054"
    assert r["override"] is None and r["automated"] is None and r["latest_attempt"] is None


def test_a_formula_with_its_inputs(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A formula KR: the expression, each input's value, source and query, and the sum."""
    r = explain(capsys, tmp, "closure", "--at", "2026-11-16T00:00:00Z")
    f = r["measurement"]["formula"]
    assert f["expression"] == "closed / total * 100"
    assert f["inputs"] == {
        "closed": {"value": 12, "source": "prom", "query": "sum(bugs_closed)"},
        "total": {"value": 20, "source": "prom", "query": "sum(bugs_opened)"},
    }
    assert f["arithmetic"] == "closed / total * 100 = 12 / 20 * 100 = 60"
    assert r["progress"]["arithmetic"] == "(60 - 50) / (90 - 50) = 0.25"
    assert r["status"]["status"] == "at_risk"  # 0.25 >= 0.5 - 0.25, just
    answers = r["measurement"]["answer"]["inputs"]
    assert answers["closed"]["values"][0]["value"] == 12.0


def test_a_manual_checkin_with_author_and_note(
    tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A check-in is explained as one: by whom, with the note; no query, no run."""
    code, _, _ = cli(
        capsys, tmp, "checkin", "postmortems", "4", "--now", "2026-11-17",
        "--note", "after the Nov review", "--author", "ana",
    )  # fmt: skip
    assert code == 0
    r = explain(capsys, tmp, "postmortems", "--at", "2026-11-18")
    m = r["measurement"]
    assert m["kind"] == "manual" and m["run"] is None and m["query"] is None
    assert m["checkin"] == {"author": "ana", "note": "after the Nov review", "until": None}
    assert r["progress"]["arithmetic"] == "(4 - 0) / (10 - 0) = 0.4"
    code, out, _ = cli(capsys, tmp, "explain", "postmortems", "--at", "2026-11-18")
    assert "check-in by ana" in out and "note: after the Nov review" in out


def test_at_picks_the_measurement_of_that_time(
    tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--at T explains the latest measurement at or before T, judged as of T."""
    measure(tmp, "2026-11-20T00:00:00Z", {**VALUES, "up_ratio": 95})
    assert explain(capsys, tmp, "uptime", "--at", "2026-11-19")["measurement"]["value"] == 73
    later = explain(capsys, tmp, "uptime", "--at", "2026-11-20T00:00:00Z")
    assert later["measurement"]["value"] == 95 and later["at"] == "2026-11-20T00:00:00.000000Z"


def test_an_override_shows_both_values(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """While an override holds, explain gives it and the automated value under it."""
    code, _, _ = cli(
        capsys, tmp, "checkin", "uptime", "99", "--now", "2026-11-17", "--author", "ana",
        "--note", "INC-42", "--until", "2026-11-30",
    )  # fmt: skip
    assert code == 0
    measure(tmp, "2026-11-18T00:00:00Z", {**VALUES, "up_ratio": 10})
    r = explain(capsys, tmp, "uptime", "--at", "2026-11-18T01:00:00Z")
    assert r["override"] == {
        "author": "ana",
        "note": "INC-42",
        "until": "2026-11-30T00:00:00.000000Z",
    }
    assert r["measurement"]["value"] == 99 and r["measurement"]["kind"] == "manual"
    assert r["automated"]["value"] == 10 and r["automated"]["query"] == "up_ratio"
    assert "an override holds" in r["status"]["rule"]
    code, out, _ = cli(capsys, tmp, "explain", "uptime", "--at", "2026-11-18T01:00:00Z")
    assert "override holds until 2026-11-30" in out
    assert "automated value under the override:" in out
    expired = explain(capsys, tmp, "uptime", "--at", "2026-11-30T00:00:00Z")
    assert expired["override"] is None and expired["measurement"]["value"] == 10


def test_text_output_writes_the_arithmetic_out(
    tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The text form reads top to bottom: query, raw answer, arithmetic, status rule."""
    code, out, _ = cli(capsys, tmp, "explain", "uptime", "--at", "2026-11-16T12:00:00Z")
    assert code == 0
    assert "query sent: up_ratio" in out
    assert 'raw answer: {"resultType": "vector"' in out
    assert "= (73 - 50) / (100 - 50) = 0.46" in out
    assert "status on_track: progress 0.46 >= expected 0.5054" in out
    assert "config hash" in out


def test_an_unknown_kr_names_close_matches(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 2 with the closest ids, never a traceback."""
    code, out, err = cli(capsys, tmp, "explain", "uptme")
    assert code == 2 and out == ""
    assert "no key result 'uptme'" in err and "did you mean uptime?" in err


def test_a_kr_without_data_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No measurement yet: a clear sentence, exit 0; --json gives found: false."""
    write_config(tmp_path)
    code, out, err = cli(capsys, tmp_path, "explain", "postmortems", "--at", "2026-11-01")
    assert code == 0, err
    assert "no measurement of postmortems at or before this time" in out
    r = explain(capsys, tmp_path, "postmortems", "--at", "2026-11-01")
    assert r["found"] is False and r["measurement"] is None and r["status"]["status"] == "no_data"


def test_a_bad_at_is_exit_2(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unreadable --at, or one in no known period, is exit 2 naming --at."""
    code, _, err = cli(capsys, tmp, "explain", "uptime", "--at", "yesterday")
    assert code == 2 and "--at: 'yesterday' is not an ISO-8601 time" in err
    code, _, err = cli(capsys, tmp, "explain", "uptime", "--at", "2025-01-01")
    assert code == 2 and "--at 2025-01-01T00:00:00Z is in no known period" in err


def test_a_million_rows_stay_fast(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """explain reads one indexed row whatever the history's length (1,000,000 rows)."""
    db = sqlite3.connect(tmp / "x.db")
    rows = (
        ("uptime", "2026-Q4", f"2026-10-{1 + i // 100000:02d}T00:00:{i % 60:02d}.{i:06d}Z", 60.0)
        for i in range(1_000_000)
    )
    with db:
        db.executemany(
            "INSERT INTO measurements (kr_id, period, measured_at, value, source, manual) "
            "VALUES (?, ?, ?, ?, 'prom', 0)",
            rows,
        )
    db.close()
    began = time.monotonic()
    r = explain(capsys, tmp, "uptime", "--at", "2026-11-20")
    took = time.monotonic() - began
    assert r["measurement"]["value"] == 73
    assert took < 1.0, took


def test_a_raw_answer_is_bounded_and_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A big answer is cut to ANSWER_LIMIT bytes and says so; a secret in it is masked."""
    from okrsync.connector import ANSWER_LIMIT, bound_answer
    from okrsync.measure.measurer import safe_answer
    from okrsync.secrets import read_secret

    big = {"values": [{"metric": {"pod": f"p{i}"}, "value": i} for i in range(1000)]}
    cut = bound_answer(big)
    assert cut is not None and cut["truncated"] is True and cut["bytes"] > ANSWER_LIMIT
    assert len(json.dumps(cut).encode()) <= ANSWER_LIMIT
    assert bound_answer({"total": 3}) == {"total": 3}
    monkeypatch.setenv("OKRSYNC_PROM_TOKEN", "tok-very-secret-123")
    assert read_secret("OKRSYNC_PROM_TOKEN") == "tok-very-secret-123"
    assert safe_answer({"url": "http://x/?t=tok-very-secret-123"}) == {"url": "http://x/?t=***"}


def test_fetch_duration_counts_the_retries(tmp_path: Path) -> None:
    """duration_s spans every attempt and the waits between them; fetched_at is when the
    last one finished; a connector without an answer (an older plugin) leaves it null."""
    from datetime import UTC, datetime

    from fakes import ScriptedConnector, factory

    from okrsync.config.loader import load
    from okrsync.errors import TransientFetchError
    from okrsync.measure.measurer import Measurer

    class Flaky(ScriptedConnector):
        def fetch(self, query: Any, window: Any) -> Any:
            if self.requests == 0:
                self.requests += 1
                raise TransientFetchError("prom: server error 503")
            return super().fetch(query, window)

    config = load(write_config(tmp_path))
    conn = Flaky({"up_ratio": 73, "sum(bugs_closed)": 1, "sum(bugs_opened)": 2})
    measurer = Measurer(config, factory({"prom": conn}), sleep=lambda _: time.sleep(0.2))
    began = datetime.now(UTC)
    krs = [kr for _, kr in config.key_results() if kr.id == "uptime"]
    (m,) = measurer.measure(krs, began)
    assert m.value == 73 and conn.requests == 2
    assert m.duration_s is not None and m.duration_s >= 0.2
    assert m.fetched_at is not None and m.fetched_at >= began
    assert m.answer is None


def test_a_retired_kr_points_to_its_history(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A KR removed from the config: exit 2, saying its history is kept."""
    text = (tmp / "okrs.yaml").read_text()
    start = text.index("      - id: closure")
    end = text.index("      - {id: postmortems")
    (tmp / "okrs.yaml").write_text(text[:start] + text[end:])
    measure(tmp, "2026-11-17T00:00:00Z", VALUES)
    code, _, err = cli(capsys, tmp, "explain", "closure")
    assert code == 2 and "closure was retired at" in err and "okrsync history closure" in err


def test_the_run_and_its_config_commit(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A run that recorded the config's git commit (apply) shows it, with its kind."""
    measure(tmp, "2026-11-18T00:00:00Z", VALUES, commit="9f8e7d6c5b4a")
    run = explain(capsys, tmp, "uptime", "--at", "2026-11-18T00:00:00Z")["measurement"]["run"]
    assert run["config_commit"] == "9f8e7d6c5b4a" and run["kind"] == "sync"
    code, out, _ = cli(capsys, tmp, "explain", "uptime", "--at", "2026-11-18T00:00:00Z")
    assert code == 0 and "commit 9f8e7d6c5b4a" in out


def test_only_the_periods_own_measurements_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A value of the period before is not this period's: no measurement to explain yet."""
    write_config(tmp_path)
    measure(tmp_path, "2026-10-01T00:00:00Z", VALUES)  # creates the store, in Q4
    db = sqlite3.connect(tmp_path / "x.db")
    with db:
        db.execute("DELETE FROM measurements")
        db.execute(
            "INSERT INTO measurements (kr_id, period, measured_at, value, source, manual) "
            "VALUES ('uptime', '2026-Q3', '2026-09-15T00:00:00.000000Z', 80, 'prom', 0)"
        )
    db.close()
    r = explain(capsys, tmp_path, "uptime", "--at", "2026-10-05")
    assert r["found"] is False and r["latest_attempt"] is None
