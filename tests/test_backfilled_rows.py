"""The readers of schema 7's two columns: a backfilled value (measured afterwards for a past
instant) counts like any other and says so; a superseded one (re-measured by `backfill
--replace`) stays in history and decides nothing, even when it is the newest row.

The writer (`okrsync backfill`) is not here yet: the rows are stored with `Store.append`
(`Measurement.backfilled`), and `superseded` is set with a direct UPDATE, as `--replace`
will."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_runs import okr

from okrsync.config.loader import load
from okrsync.measure.measurement import Measurement
from okrsync.progress.maths import Observation, observe
from okrsync.report.forecast import Forecast, forecast
from okrsync.store.series import recent_sums, series
from okrsync.store.sqlite import SqliteDatabase
from okrsync.store.store import Store

CONFIG = """\
period: {name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}
defaults: {every: 1d, thresholds: {on_track: 0.10, at_risk: 0.25}, stale_after: 3}
sources:
  prom: {type: prometheus, url: "http://prometheus.test:9090"}
objectives:
  - id: o
    title: O
    key_results:
      - {id: uptime, title: API uptime, source: prom, query: "up_ratio", start: 50, target: 100}
      - {id: deploys, source: prom, query: "deploys", start: 0, target: 10}
"""
NOW = "2026-11-09T12:00:00Z"
AT = datetime(2026, 11, 9, 12, tzinfo=UTC)


def day(n: int) -> datetime:
    return datetime(2026, 11, n, tzinfo=UTC)


def row(kr: str, n: int, value: float | None, *, backfilled: bool = False) -> Measurement:
    error = None if value is not None else "boom"
    progress = None if value is None else (value - 50) / 50 if kr == "uptime" else value / 10
    return Measurement(
        kr, day(n), "prom", kr, value, progress, "on_track", error=error, backfilled=backfilled
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """uptime: live 60 (Nov 1) and 70 (Nov 5), backfilled 65 (Nov 3) and 75 (Nov 7) by run
    `bf-1`, and a superseded backfilled 95, the newest (Nov 9). deploys: live 4 (Nov 8)
    and a superseded failed attempt, the newest (Nov 9)."""
    (tmp_path / "okrs.yaml").write_text(CONFIG)
    config = load(tmp_path / "okrs.yaml")
    s = Store(tmp_path / "x.db")
    s.sync_config(config, day(1))
    with s.transaction():
        live = [row("uptime", 1, 60), row("uptime", 5, 70), row("deploys", 8, 4)]
        s.record_run("live-1", "sync", day(8), day(8), "d", live, "2026-Q4")
        back = [row("uptime", 3, 65, backfilled=True), row("uptime", 7, 75, backfilled=True)]
        s.record_run("bf-1", "backfill", day(9), day(9), "d", back, "2026-Q4")
        old = [row("uptime", 9, 95, backfilled=True), row("deploys", 9, None, backfilled=True)]
        ids = s.record_run("bf-0", "backfill", day(9), day(9), "d", old, "2026-Q4")
        # what `backfill --replace` will do to the rows it re-measures (no writer yet)
        marks = ",".join("?" * len(ids))
        s.db.execute(f"UPDATE measurements SET superseded = 1 WHERE id IN ({marks})", ids)
    return s


def test_observations_skip_a_superseded_row_even_the_newest(store: Store) -> None:
    """The value is the newest row that is not superseded (a backfilled one, said so); a
    superseded failed attempt is no attempt: no error, no staleness."""
    period = store.periods()[0]
    seen = store.observations(["uptime", "deploys"], AT, period)
    assert (seen["uptime"].value, seen["uptime"].measured_at) == (75, day(7))
    assert seen["uptime"].backfilled is True
    assert (seen["deploys"].value, seen["deploys"].error) == (4, None)
    assert seen["deploys"].attempted_at == day(8) and seen["deploys"].backfilled is False
    store.close()


def test_series_sums_and_forecast_skip_superseded_rows(store: Store) -> None:
    """The report's chart and least-squares sums hold the four values that show, backfilled
    ones included, never the superseded 95; the forecast is fitted from those four."""
    period = store.periods()[0]
    points = series(store, "uptime", period, AT)
    assert [p.value for p in points] == [60, 65, 70, 75]
    s = recent_sums(store, "uptime", period, AT, timedelta(days=30), 1000, 10)
    assert (s.n, s.sy) == (4, 270)
    outlook = forecast(s, AT, period.ends_at)
    assert isinstance(outlook, Forecast) and outlook.points == 4
    store.close()


def test_final_values_skip_superseded_rows(store: Store) -> None:
    """A period's final value (what grades and `start: previous` read) is never a
    superseded row's."""
    period = store.periods()[0]
    assert store.final_values(["uptime", "deploys"], period, period.ends_at) == {
        "uptime": 75,
        "deploys": 4,
    }
    store.close()


def test_latest_measurement_is_never_superseded(store: Store) -> None:
    """`Store.measurement` (what explain picks) skips superseded rows; history keeps them,
    with both flags as bools."""
    latest = store.measurement("uptime", AT)
    assert latest is not None and latest["value"] == 75 and latest["run_kind"] == "backfill"
    assert (latest["backfilled"], latest["superseded"]) == (True, False)
    history = store.history("uptime")
    assert [(h["value"], h["backfilled"], h["superseded"]) for h in history] == [
        (95, True, True),
        (75, True, False),
        (70, False, False),
        (65, True, False),
        (60, False, False),
    ]
    store.close()


def test_status_json_says_backfilled_only_for_a_backfilled_value(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`backfilled` is true on a KR whose shown value is backfilled and false otherwise (a
    live value, or an earlier moment when the live value was the latest)."""
    store.close()
    code, out, err = okr(tmp_path, capsys, "status", "--json", "--now", NOW)
    assert code == 0, err
    krs = {k["id"]: k for k in json.loads(out)["objectives"][0]["key_results"]}
    assert (krs["uptime"]["value"], krs["uptime"]["backfilled"]) == (75, True)
    assert (krs["deploys"]["value"], krs["deploys"]["backfilled"]) == (4, False)
    assert krs["deploys"]["status"] != "stale" and krs["deploys"]["error"] is None
    _, out, _ = okr(tmp_path, capsys, "status", "--json", "--now", "2026-11-06")
    uptime = json.loads(out)["objectives"][0]["key_results"][0]
    assert (uptime["value"], uptime["backfilled"]) == (70, False)


def test_status_text_marks_a_backfilled_value(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The value shown is followed by `(backfilled)`, as a check-in's is by `(manual)`."""
    store.close()
    _, out, _ = okr(tmp_path, capsys, "status", "--now", NOW)
    lines = out.splitlines()
    uptime = lines[lines.index(next(x for x in lines if "[uptime]" in x)) + 1]
    deploys = lines[lines.index(next(x for x in lines if "[deploys]" in x)) + 1]
    assert "75 (backfilled)" in uptime and "(backfilled)" not in deploys


def test_history_shows_superseded_rows_flagged(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """history --json carries `backfilled` and `superseded` as bools on every row; the
    text marks the rows that are either."""
    store.close()
    _, out, _ = okr(tmp_path, capsys, "history", "uptime", "--json")
    rows = json.loads(out)
    assert rows[0]["value"] == 95 and rows[0]["backfilled"] is True
    assert rows[0]["superseded"] is True
    assert rows[1]["value"] == 75 and rows[1]["backfilled"] is True
    assert rows[1]["superseded"] is False
    _, out, _ = okr(tmp_path, capsys, "history", "uptime")
    lines = {line.split()[0][:10]: line for line in out.splitlines()[1:]}
    assert "[backfilled, superseded] uptime" in lines["2026-11-09"]
    assert "[backfilled] uptime" in lines["2026-11-07"]
    assert "[" not in lines["2026-11-05"]


def test_explain_says_a_value_is_backfilled(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """explain shows the backfilled row (never the newer superseded one, nor as the latest
    attempt), says so in JSON and text, and names the backfill run."""
    store.close()
    _, out, _ = okr(tmp_path, capsys, "explain", "uptime", "--at", NOW, "--json")
    result = json.loads(out)
    m = result["measurement"]
    assert (m["value"], m["backfilled"], m["run"]["id"], m["run"]["kind"]) == (
        75,
        True,
        "bf-1",
        "backfill",
    )
    assert result["latest_attempt"] is None
    _, out, _ = okr(tmp_path, capsys, "explain", "uptime", "--at", NOW)
    assert (
        "backfilled: measured afterwards for this instant by `okrsync backfill` (run bf-1)" in out
    )
    assert "run bf-1 (backfill)" in out
    _, out, _ = okr(tmp_path, capsys, "explain", "deploys", "--at", NOW, "--json")
    result = json.loads(out)
    assert result["measurement"]["backfilled"] is False and result["latest_attempt"] is None


def test_report_forecasts_from_the_values_that_show(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The report's forecast of uptime is fitted from its four shown values, not five."""
    store.close()
    code, out, err = okr(tmp_path, capsys, "report", "--md", "-", "--now", NOW)
    assert code == 0, err
    row_ = next(x for x in out.split("## Objectives")[1].splitlines() if "`uptime`" in x)
    assert "from 4 values" in row_


def test_a_failed_attempt_keeps_the_backfilled_flag_of_the_value_it_keeps() -> None:
    """After a failed attempt the value shown is still the prior one, backfilled or not; a
    new value is live."""
    prior = Observation(75, day(7), attempted_at=day(7), backfilled=True)
    assert observe(prior, None, "boom", day(8)).backfilled is True
    assert observe(prior, 80, None, day(8)).backfilled is False


def test_the_readers_still_search_by_index(store: Store) -> None:
    """Every read that now leaves superseded rows out still searches the (kr_id,
    measured_at) index, never scans the table (the chart's bucketed query included)."""
    period = store.periods()[0]
    hourly = [
        dataclasses.replace(row("deploys", 1, 1.0), measured_at=day(1) - timedelta(hours=i))
        for i in range(130)
    ]
    with store.transaction():
        store.append("r", hourly, "2026-Q4")
    sent: list[str] = []
    assert isinstance(store.db, SqliteDatabase)
    conn = store.db.db.conn
    conn.set_trace_callback(sent.append)
    store.observations(["uptime", "deploys"], AT, period)
    store.measurement("uptime", AT, valued=True, period=period)
    store.measurement("uptime", AT, automated=True)
    series(store, "deploys", period, AT)
    recent_sums(store, "uptime", period, AT, timedelta(days=30), 1000, 10, held_since=day(2))
    store.final_values(["uptime"], period, AT)
    conn.set_trace_callback(None)
    reads = [q for q in sent if "FROM measurements" in q and "superseded = 0" in q]
    assert len(reads) >= 8 and any("WITH b" in q for q in reads)
    for q in reads:
        plan = " | ".join(r[3] for r in store.db.execute("EXPLAIN QUERY PLAN " + q))
        assert "idx_measurements_kr_id_measured_at" in plan, (q, plan)
        assert not re.search(r"\bSCAN (measurements|m)\b", plan), (q, plan)
    store.close()
