"""`okrsync backfill` end to end against a real Prometheus holding weeks of past samples
(written with promtool): values at each instant, gaps, `reduce`, and one query_range
request per distinct query."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cli_runs import okr
from clock import pin_cli_clock
from prometheus_server import HistoricalPrometheus, HistorySample, series
from prometheus_server import start_prometheus_with_history as started

START = datetime(2026, 10, 1, tzinfo=UTC)
END = datetime(2026, 10, 29, tzinfo=UTC)
NOW = datetime(2026, 10, 29, 6, tzinfo=UTC)
HOUR = timedelta(hours=1)
GAP = range(50, 80)  # hours since START with no sample: Oct 3 02:00 .. Oct 4 07:00


def history() -> Iterator[HistorySample]:
    """tickets{team=api} = hours since START; tickets{team=web} = 2 x that; errors has a
    30-hour hole."""
    yield from series("bf_tickets", {"team": "api"}, START, END, HOUR, float)
    yield from series("bf_tickets", {"team": "web"}, START, END, HOUR, lambda k: 2.0 * k)
    yield from series("bf_errors", {}, START, END, HOUR, lambda k: None if k in GAP else 5.0)


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HistoricalPrometheus]:
    with started(tmp_path_factory.mktemp("bf-prom"), history()) as server:
        yield server


@pytest.fixture
def config(tmp_path: Path, prom: HistoricalPrometheus, monkeypatch: pytest.MonkeyPatch) -> Path:
    pin_cli_clock(monkeypatch, NOW)
    (tmp_path / "okrs.yaml").write_text(
        f"""
period: {{name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}}
sources:
  prom: {{type: prometheus, url: "{prom.url}"}}
objectives:
  - id: sre
    title: SRE
    key_results:
      - {{id: api, source: prom, query: 'bf_tickets{{team="api"}}', start: 0, target: 1000}}
      - {{id: api-again, source: prom, query: 'bf_tickets{{team="api"}}', start: 0,
          target: 2000}}
      - {{id: both, source: prom, query: bf_tickets, reduce: sum, start: 0, target: 3000}}
      - {{id: unreduced, source: prom, query: bf_tickets, start: 0, target: 10}}
      - {{id: errors, source: prom, query: bf_errors, start: 10, target: 0}}
      - {{id: share, formula: "a / b * 100", start: 0, target: 100,
          inputs: {{a: {{source: prom, query: 'bf_tickets{{team="api"}}'}},
                    b: {{source: prom, query: 'sum(bf_tickets)'}}}}}}
"""
    )
    return tmp_path


def rows(tmp_path: Path, kr: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(tmp_path / "x.db")
    conn.row_factory = sqlite3.Row
    found = conn.execute(
        "SELECT * FROM measurements WHERE kr_id = ? ORDER BY measured_at", [kr]
    ).fetchall()
    conn.close()
    return [dict(r) for r in found]


def hours(at: str) -> float:
    """Hours since START of a stored `measured_at`."""
    moment = datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return (moment - START) / HOUR


def test_values_at_each_instant_and_one_request_per_distinct_query(
    config: Path, prom: HistoricalPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    before = prom.requests_served()
    code, out, err = okr(
        config, capsys, "backfill", "api", "api-again", "both", "--step", "6h", "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    # Oct 1 00:00 to Oct 29 06:00 every 6h: 28 days x 4 + 2 instants
    assert [k["points"] for k in report["krs"]] == [114, 114, 114]
    # the last sample is Oct 29 00:00: 06:00 is past the 5-minute lookback, a gap
    assert [(k["written"], k["no_data"]) for k in report["krs"]] == [(113, 1)] * 3
    # `api` and `api-again` share their query: two distinct queries, two requests
    assert prom.requests_served() - before == 2
    assert report["requests"] == {"prom": 2}
    api = rows(config, "api")
    assert [r["value"] for r in api] == [hours(r["measured_at"]) for r in api]
    assert api[8]["measured_at"].startswith("2026-10-03T00:00:00")
    assert api[8]["value"] == 48 and api[8]["progress"] == pytest.approx(0.048)
    assert api[8]["query"] == 'bf_tickets{team="api"}' and api[8]["backfilled"] == 1
    assert api[-1]["measured_at"].startswith("2026-10-29T00:00:00")
    both = rows(config, "both")
    assert [r["value"] for r in both] == [3 * hours(r["measured_at"]) for r in both]
    assert json.loads(both[1]["answer"])["series"] == 2


def test_a_step_without_data_is_a_gap_never_zero(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = okr(config, capsys, "backfill", "errors", "--step", "1h", "--json")
    assert code == 0
    (kr,) = json.loads(out)["krs"]
    stored = rows(config, "errors")
    assert {r["value"] for r in stored} == {5.0}
    missing = {round(hours(r["measured_at"])) for r in stored} ^ set(range(0, 28 * 24 + 1))
    # no point in the hole, none after the last sample (Oct 29 01:00 .. 06:00)
    assert missing == set(GAP)
    assert kr["no_data"] == kr["points"] - kr["written"] == len(missing) + 6


def test_several_series_without_reduce_fail_their_points_and_store_nothing(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = okr(config, capsys, "backfill", "unreduced", "--from", "2026-10-20")
    assert code == 1
    assert "gives 2 series, not one" in out and "reduce: sum" in out
    assert rows(config, "unreduced") == []


def test_formula_of_range_inputs_and_running_twice_asks_nothing(
    config: Path, prom: HistoricalPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = okr(config, capsys, "backfill", "share", "--from", "2026-10-02")
    assert code == 0, err
    share = rows(config, "share")
    assert len(share) == 28  # Oct 2 .. Oct 29, daily at 00:00
    assert all(r["value"] == pytest.approx(100 / 3) for r in share)
    assert json.loads(share[0]["inputs"]) == {"a": 24.0, "b": 72.0}
    before = prom.requests_served()
    code, out, _ = okr(config, capsys, "backfill", "share", "--from", "2026-10-02", "--json")
    assert code == 0
    assert json.loads(out)["krs"][0]["skipped_existing"] == 28
    assert prom.requests_served() == before


def test_status_history_and_explain_use_backfilled_points(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert okr(config, capsys, "backfill", "api")[0] == 0
    code, out, _ = okr(config, capsys, "status", "--json", "--now", "2026-10-10T03:00:00Z")
    assert code == 0
    kr = next(
        k for o in json.loads(out)["objectives"] for k in o["key_results"] if k["id"] == "api"
    )
    assert kr["value"] == 9 * 24 and kr["backfilled"] is True
    code, out, _ = okr(config, capsys, "explain", "api", "--at", "2026-10-10T03:00:00Z")
    assert code == 0 and "backfill" in out
