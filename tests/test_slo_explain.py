"""An SLO KR traced back to its queries: explain (text and JSON) and history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runs import okr
from fakes import ScriptedConnector, factory
from slo_script import CONFIG, ELAPSED, GOOD, NOW, TOTAL, answers, healthy

from okrsync.config.loader import load
from okrsync.errors import AuthError
from okrsync.measure.measurer import Measurer
from okrsync.service.once import run_once
from okrsync.store.store import Store

AT = "2026-11-15T12:00:00Z"


def stored(tmp_path: Path, script: dict[str, float]) -> None:
    (tmp_path / "okrs.yaml").write_text(CONFIG)
    config = load(tmp_path / "okrs.yaml")
    store = Store(tmp_path / "x.db")
    conn = ScriptedConnector(script)
    run_once(config, store, NOW, measurer=Measurer(config, factory({"prom": conn})))
    store.close()


def fast_burn() -> dict[str, float]:
    script = healthy("checkout") | healthy("search", "28d", errors=True)
    for window in ("5m", "1h"):
        script[GOOD.replace("JOB", "checkout").replace("W", window)] = 9_800
    return script


def test_explain_shows_every_query_its_window_count_and_the_arithmetic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stored(tmp_path, fast_burn())
    code, out, _ = okr(tmp_path, capsys, "explain", "checkout", "--at", AT, "--json")
    assert code == 0
    slo = json.loads(out)["measurement"]["slo"]
    asked = {q["name"]: q for q in slo["queries"]}
    assert len(asked) == 10
    assert asked["good"]["window"] == ELAPSED and asked["good"]["count"] == 999_600
    assert asked["good"]["query"] == f'sum(increase(req{{job="checkout",code!~"5.."}}[{ELAPSED}]))'
    assert asked["total@6h"]["window"] == "6h" and asked["total@6h"]["source"] == "prom"
    maths = slo["arithmetic"]
    assert maths["sli"] == "SLI = 100 x good / total = 100 x 999600 / 1000000 = 99.96"
    assert maths["error_budget_remaining"].endswith("= 0.6")
    assert maths["burn_rates"]["1h"] == "(1 - 9800 / 10000) / 0.001 = 20"
    assert "1h/5m: 1h 20, 5m 20; both >= 14.4? firing" in maths["alerts"]
    assert "6h/30m: 6h 0.1, 30m 0.1; both >= 6? not firing" in maths["alerts"]
    code, out, _ = okr(tmp_path, capsys, "explain", "checkout", "--at", AT)
    assert "good = 999,600" in out or "good = 999600" in out
    assert "over 6h" in out and "burn rate 1h = (1 - 9800 / 10000) / 0.001 = 20" in out
    assert "status at_risk: burn alert 1h/5m firing" in out


def test_explain_of_an_errors_slo_writes_good_as_total_minus_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stored(tmp_path, fast_burn())
    code, out, _ = okr(tmp_path, capsys, "explain", "search", "--at", AT, "--json")
    assert code == 0
    explained = json.loads(out)
    maths = explained["measurement"]["slo"]["arithmetic"]
    assert maths["sli"].startswith("good = total - errors = 1000000 - 400 = 999600; SLI = ")
    assert maths["burn_rates"]["5m"] == "1 / 10000 / 0.01 = 0.01"
    rule = explained["status"]["rule"]
    assert rule.startswith("on_track: SLI 99.96 >= objective 99") and "rolling window" in rule


def test_explain_of_a_failed_slo_shows_the_counts_it_got(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No events, or one refused query: the windows and the counts that came back show."""
    script = fast_burn() | answers("checkout", {ELAPSED: (0, 0)})
    script[TOTAL.replace("JOB", "search").replace("W", "6h")] = AuthError("prom: HTTP 401")
    stored(tmp_path, script)
    code, out, _ = okr(tmp_path, capsys, "explain", "checkout", "--at", AT, "--json")
    assert code == 0
    latest = json.loads(out)["latest_attempt"] or json.loads(out)["measurement"]
    assert latest["error"] == "slo: no events in the window (total = 0)"
    counts = {q["name"]: (q["count"], q["window"]) for q in latest["slo"]["queries"]}
    assert counts["total"] == (0, ELAPSED) and latest["slo"]["arithmetic"] is None
    code, out, _ = okr(tmp_path, capsys, "explain", "search", "--at", AT, "--json")
    latest = json.loads(out)["latest_attempt"] or json.loads(out)["measurement"]
    assert latest["error"] == "total@6h: prom: HTTP 401"
    counts = {q["name"]: (q["count"], q["window"]) for q in latest["slo"]["queries"]}
    assert counts["total"] == (1_000_000, "28d") and counts["errors@6h"] == (1, "6h")
    assert counts["total@6h"] == (None, "6h")


def test_history_keeps_good_and_total_with_each_measurement(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stored(tmp_path, fast_burn())
    code, out, _ = okr(tmp_path, capsys, "history", "checkout")
    assert code == 0
    assert f"good 999,600 / total 1,000,000 over {ELAPSED}, budget 0.6 left" in out
    assert "burn alert firing" in out
    code, out, _ = okr(tmp_path, capsys, "history", "checkout", "--json")
    row = json.loads(out)[0]
    assert row["slo"]["good"] == 999_600 and row["slo"]["burn_rates"]["1h"] == pytest.approx(20)


def test_status_text_shows_the_budget_and_burn_beside_the_kr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stored(tmp_path, fast_burn())
    code, out, _ = okr(tmp_path, capsys, "status", "--now", AT)
    assert code == 0
    assert (
        "SLO 99.9% (period): SLI 99.96% · budget 60% left · burning: 1h/5m at 20.0x ≥ 14.4x" in out
    )
    assert "SLO 99% (28d): SLI 99.96% · budget 96% left · burn ok (5m 0.0x, 30m 0.0x" in out


def test_a_checkin_on_an_slo_kr_must_be_a_percent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Never an SLI above 100% or below 0, typed or measured; a percent is judged by the
    budget rule, without burn rates."""
    stored(tmp_path, fast_burn())
    for bad in ("150", "-5"):
        code, _, err = okr(tmp_path, capsys, "checkin", "checkout", "--now", AT, "--", bad)
        assert code == 2 and "is an SLO: its value is an SLI, a percent from 0 to 100" in err
    code, out, _ = okr(tmp_path, capsys, "checkin", "checkout", "99.8", "--now", AT)
    assert code == 0 and "off_track" in out
