"""SLO key results: their queries, SLI, error budget, burn rates and budget-based status
(engine side, with a scripted source; tests/test_slo_prometheus.py asks a real one)."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cli_runs import okr
from fakes import ScriptedConnector, factory
from slo_script import BAD, CONFIG, ELAPSED, GOOD, NOW, TOTAL, answers, healthy

from okrsync.config.loader import Config, load
from okrsync.errors import AuthError, NoDataError
from okrsync.measure.measurer import Measurer
from okrsync.measure.plan import plan
from okrsync.measure.slo_reading import SloReading
from okrsync.progress.definitions import SloTarget
from okrsync.progress.maths import Observation, slo_status
from okrsync.progress.status import judged_slo
from okrsync.service.once import run_once
from okrsync.store.store import Store


@pytest.fixture
def config(tmp_path: Path) -> Config:
    (tmp_path / "okrs.yaml").write_text(CONFIG)
    return load(tmp_path / "okrs.yaml")


def measure(config: Config, script: dict[str, Any], store: Store | None = None) -> dict[str, Any]:
    conn = ScriptedConnector(script)
    result = run_once(config, store, NOW, measurer=Measurer(config, factory({"prom": conn})))
    return {"rows": {r.kr_id: r for r in result.measurements}, "asked": conn.asked}


def test_an_slo_asks_its_window_and_each_burn_window_once(config: Config) -> None:
    """good and total over the period so far, then over 5m, 30m, 1h and 6h: 10 queries."""
    krs = [kr for _, kr in config.key_results()]
    todo = plan(config, krs[:1], NOW)
    texts = sorted(f.text for f in todo.fetches)
    assert len(texts) == 10
    assert 'sum(increase(req{job="checkout"}[3931200s]))' in texts
    assert 'sum(increase(req{job="checkout",code!~"5.."}[30m]))' in texts
    assert {f.window.at for f in todo.fetches} == {NOW}  # all counted up to one instant
    names = [n for n, _ in todo.wants["checkout"]]
    assert names[:2] == ["good", "total"] and "total@6h" in names
    rolling = plan(config, krs[1:], NOW)
    assert 'sum(increase(req{job="search"}[28d]))' in {f.text for f in rolling.fetches}


def test_sli_budget_and_burn_rates_are_ratios_of_sums(config: Config) -> None:
    script = healthy("checkout") | healthy("search", "28d", errors=True)
    script[GOOD.replace("JOB", "checkout").replace("W", "1h")] = 9_800  # 2% errors in 1h
    got = measure(config, script)
    row = got["rows"]["checkout"]
    assert row.error is None
    assert row.value == pytest.approx(99.96)
    assert row.slo.good == 999_600 and row.slo.total == 1_000_000
    assert row.slo.error_budget_remaining == pytest.approx(0.6)
    assert row.slo.burn_rates["1h"] == pytest.approx(20.0)  # 0.02 / 0.001
    assert row.slo.burn_rates["5m"] == pytest.approx(0.1)
    assert row.slo.alerts_firing == ()  # 1h burns at 20 but 5m does not: no page
    assert row.inputs["good@1h"] == 9_800 and row.inputs["total"] == 1_000_000
    assert row.status == "on_track"
    search = got["rows"]["search"]
    assert search.value == pytest.approx(99.96) and search.slo.good == pytest.approx(999_600)
    assert search.slo.error_budget_remaining == pytest.approx(0.96)
    assert search.slo.window == "28d" and search.slo.rendered_window == "28d"
    assert len(got["asked"]) == 20


def test_a_fast_burn_fires_its_pair_and_puts_the_kr_at_risk(config: Config) -> None:
    script = healthy("checkout") | healthy("search", "28d", errors=True)
    for window in ("5m", "1h"):
        script[GOOD.replace("JOB", "checkout").replace("W", window)] = 9_800
    row = measure(config, script)["rows"]["checkout"]
    assert row.slo.alerts_firing == ({"long": "1h", "short": "5m", "factor": 14.4},)
    assert row.status == "at_risk"


def test_a_breached_slo_is_off_track_even_while_alerts_fire(config: Config) -> None:
    script = healthy("checkout") | healthy("search", "28d", errors=True)
    script |= answers("checkout", {ELAPSED: (998_000, 1_000_000), "5m": (9_000, 10_000)})
    script |= answers("checkout", {"1h": (9_000, 10_000)})
    row = measure(config, script)["rows"]["checkout"]
    assert row.value == pytest.approx(99.8)
    assert row.slo.error_budget_remaining == pytest.approx(-1.0)  # shown as is
    assert row.slo.alerts_firing and row.status == "off_track"


def test_no_events_and_good_above_total_are_errors_never_values(config: Config) -> None:
    script = healthy("checkout") | healthy("search", "28d", errors=True)
    script |= answers("checkout", {ELAPSED: (0, 0)})
    script |= answers("search", {"28d": (5, 3)}, errors=True)
    rows = measure(config, script)["rows"]
    assert rows["checkout"].value is None and rows["checkout"].status == "no_data"
    assert rows["checkout"].error == "slo: no events in the window (total = 0)"
    assert rows["search"].value is None
    assert "errors > total: check the queries" in (rows["search"].error or "")
    assert rows["search"].inputs["errors"] == 5  # the counts are kept to look into


def test_a_query_without_series_counts_no_events_and_a_failed_one_fails_the_kr(
    config: Config,
) -> None:
    """No 5xx series at all is 0 errors; a refused query is the KR's error, no value."""
    script = healthy("checkout") | healthy("search", "28d", errors=True)
    for window in ("28d", "5m", "30m", "1h", "6h"):
        script[BAD.replace("JOB", "search").replace("W", window)] = NoDataError("no series")
    script[TOTAL.replace("JOB", "checkout").replace("W", "6h")] = AuthError("prom: HTTP 401")
    rows = measure(config, script)["rows"]
    assert rows["search"].value == 100.0 and rows["search"].slo.burn_rates["5m"] == 0.0
    assert rows["checkout"].value is None
    assert rows["checkout"].error == "total@6h: prom: HTTP 401"


def test_an_slo_query_without_series_logs_no_data_at_info(
    config: Config, events: list[MutableMapping[str, Any]]
) -> None:
    """Matching nothing is the normal state of an error query, so it is no warning there."""
    script = healthy("checkout") | healthy("search", "28d", errors=True)
    script[BAD.replace("JOB", "search").replace("W", "5m")] = NoDataError("prom: no series")
    measure(config, script)
    fetches = [e for e in events if e["event"] == "fetch" and "[5m]" in e["query"]]
    empty = next(e for e in fetches if e["query"].startswith('sum(increase(req{job="search",code'))
    assert empty["outcome"] == "no_data" and empty["log_level"] == "info"
    assert all(e["outcome"] == "ok" for e in fetches if e is not empty)


def test_history_keeps_the_counts_and_status_json_shows_the_slo(
    config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(tmp_path / "x.db")
    measure(config, healthy("checkout") | healthy("search", "28d", errors=True), store)
    store.close()
    code, out, _ = okr(tmp_path, capsys, "history", "checkout", "--json")
    assert code == 0
    entry = json.loads(out)[0]
    assert entry["inputs"]["good"] == 999_600 and entry["inputs"]["total"] == 1_000_000
    code, out, _ = okr(tmp_path, capsys, "status", "--json", "--now", "2026-11-15T12:00:00Z")
    assert code == 0
    objective = json.loads(out)["objectives"][0]
    assert objective["progress"] == 1.0 and objective["status"] == "on_track"  # not done early
    krs = {k["id"]: k for k in objective["key_results"]}
    slo = krs["checkout"]["slo"]
    assert slo["objective"] == 99.9 and slo["window"] == "period"
    assert slo["sli"] == pytest.approx(99.96) and slo["good"] == 999_600
    assert slo["error_budget_remaining"] == pytest.approx(0.6)
    assert set(slo["burn_rates"]) == {"5m", "30m", "1h", "6h"} and slo["alerts_firing"] == []
    assert krs["checkout"]["status"] == "on_track" and krs["checkout"]["target"] == 99.9


def test_a_stored_period_keeps_each_slo_objective_and_window(
    config: Config, tmp_path: Path
) -> None:
    """A past period is judged by its budget too: its definitions keep the SLO."""
    store = Store(tmp_path / "x.db")
    measure(config, healthy("checkout") | healthy("search", "28d", errors=True), store)
    defs = store.definitions("Q4")
    store.close()
    assert defs is not None
    checkout, search = defs.kr("checkout"), defs.kr("search")
    assert checkout is not None and checkout.slo == SloTarget(99.9, "period")
    assert search is not None and search.slo == SloTarget(99.0, "28d") and search.slo.rolling


def reading(firing: bool = False) -> SloReading:
    alerts = ({"long": "1h", "short": "5m", "factor": 14.4},) if firing else ()
    return SloReading(99.9, "period", "1s", 99.95, 1, 1, 0.5, {}, alerts)


def judged(
    value: float,
    elapsed: float,
    *,
    firing: bool = False,
    rolling: bool = False,
    ended: bool = False,
) -> str:
    at = NOW - timedelta(minutes=1)
    obs = Observation(value, at, attempted_at=at, slo=reading(firing))
    return slo_status(obs, 99.9, rolling, elapsed, ended, NOW, 3600)


def test_status_follows_the_budget() -> None:
    """Half the budget spent: on track past half the period, at risk before it (not for a
    rolling window); an alert means at risk; below the objective off track; done at the end."""
    assert judged(99.95, 0.6) == "on_track"
    assert judged(99.95, 0.4) == "at_risk"
    assert judged(99.95, 0.4, rolling=True) == "on_track"
    assert judged(99.95, 0.9, firing=True) == "at_risk"
    assert judged(99.85, 0.9, firing=True) == "off_track"
    assert judged(99.95, 1.0, ended=True) == "done"
    assert judged(99.85, 1.0, ended=True) == "off_track"
    assert judged(100.0, 0.5) == "on_track"  # a full budget never makes an SLO done early
    stale = Observation(99.95, NOW - timedelta(hours=2), attempted_at=NOW, error="down")
    assert slo_status(stale, 99.9, False, 0.9, False, NOW, 3600) == "stale"


BAD_CONFIG = """\
period: {name: Q4, start: 2026-10-01, end: 2026-12-31}
sources:
  prom: {type: prometheus, url: "http://127.0.0.1:1"}
objectives:
  - id: o
    title: O
    key_results:
      - id: both
        source: prom
        slo:
          good: a[{window}]
          errors: b[{window}]
          total: c[{window}]
          objective: 100
      - id: pair
        source: prom
        slo:
          good: a[{window}]
          total: c[{window}]
          objective: 99.9
          window: 30m
          burn_alerts: [{long: 5m, short: 1h, factor: 2}]
      - id: short
        source: prom
        slo: {good: a, total: c, objective: 99, window: 30m}
      - id: missing
        source: prom
        slo: {sloth: slos/none.yaml#x}
"""


def test_every_slo_mistake_is_reported_at_its_line_at_once(tmp_path: Path) -> None:
    (tmp_path / "okrs.yaml").write_text(BAD_CONFIG)
    with pytest.raises(Exception) as caught:
        load(tmp_path / "okrs.yaml")
    text = str(caught.value)
    lines = {line.split(": ", 1)[0].rsplit(":", 1)[1]: line for line in text.splitlines()}
    assert "set `good` or `errors` (not both)" in lines["10"]
    assert "objective 100 is not a percent strictly between 0 and 100" in lines["14"]
    assert "short window 1h is not shorter than long window 5m" in lines["22"]
    assert "window 30m is shorter than the longest burn window (6h)" in lines["25"]
    assert "Sloth file slos/none.yaml: no such file or directory" in lines["28"]
    assert "target" not in text  # a target the Sloth file would give is not "missing"


def test_a_reading_is_judged_against_the_objective_configured_now() -> None:
    """After `objective` changes, the last reading's budget and burn rates follow it (the
    SLI stays what was measured) until the next measurement."""
    pair = {"long": "1h", "short": "5m", "factor": 14.4}
    before = SloReading(
        99.9, "period", "1s", 99.99, 9_999, 10_000, 0.9, {"5m": 20.0, "1h": 20.0}, (pair,), (pair,)
    )
    stricter = before.against(99.99)
    assert stricter.error_budget_remaining == pytest.approx(0.0)
    assert stricter.burn_rates["1h"] == pytest.approx(200.0) and stricter.alerts_firing == (pair,)
    looser = before.against(99.0)
    assert looser.error_budget_remaining == pytest.approx(0.99)
    assert looser.burn_rates["5m"] == pytest.approx(2.0) and looser.alerts_firing == ()
    at = NOW - timedelta(minutes=1)
    obs = Observation(99.99, at, attempted_at=at, slo=before)
    assert slo_status(obs, 99.9, False, 0.5, False, NOW, 3600) == "at_risk"  # as measured
    assert judged_slo(SloTarget(99.0, "period"), obs).slo == looser
