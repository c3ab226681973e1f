"""Review of `okrsync backfill` (issue 12): edge cases of the contract found by an
adversarial pass (time zones, plan's baseline, Ctrl-C while a request is in flight, the
daemon switch, the dry-run estimate), each once a bug, and checks not covered elsewhere."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from backfill_sources import Sources
from cli_runs import okr
from clock import pin_cli_clock
from pytest_httpserver import HTTPServer
from test_backfill import NOW, history, write_config
from werkzeug import Request, Response

from okrsync.config.loader import load
from okrsync.measure import backfill_plan
from okrsync.measure.plan import query_fields


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    pin_cli_clock(monkeypatch, NOW)


def test_from_to_accept_what_now_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sources: Sources, httpserver: HTTPServer
) -> None:
    write_config(tmp_path, httpserver)
    code, out, err = okr(
        tmp_path,
        capsys,
        "backfill",
        "resolved",
        "--json",
        "--from",
        "2026-10-03T01:00:00+02:00",
        "--to",
        "2026-10-05T00:00:00Z",
    )
    assert code == 0, err
    (kr,) = json.loads(out)["krs"]
    # 2026-10-02T23:00Z: the first midnight at or after is Oct 3; Oct 5 00:00 included
    assert [r["measured_at"][:10] for r in history(tmp_path, "resolved")] == [
        "2026-10-03",
        "2026-10-04",
        "2026-10-05",
    ]
    assert kr["points"] == 3


def test_store_errors_are_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sources: Sources, httpserver: HTTPServer
) -> None:
    write_config(tmp_path, httpserver)
    (tmp_path / "x.db").write_bytes(b"this is not a database at all" * 100)
    code, out, err = okr(tmp_path, capsys, "backfill", "resolved")
    assert code == 3, (out, err)
    code, out, err = okr(tmp_path, capsys, "backfill", "resolved", "--dry-run")
    assert code == 3, (out, err)
    (tmp_path / "x.db").unlink()
    conn = sqlite3.connect(tmp_path / "x.db")
    conn.execute("CREATE TABLE other (a)")
    conn.commit()
    conn.close()
    code, out, err = okr(tmp_path, capsys, "backfill", "resolved")
    assert code == 3, (out, err)
    print(err)
    assert sources.asked == []


def _tz(tmp_path: Path, tz: str) -> None:
    p = tmp_path / "okrs.yaml"
    p.write_text(p.read_text().replace("end: 2026-12-31}", f"end: 2026-12-31, timezone: {tz}}}"))


def test_http_source_with_now_in_path_or_body_is_backfilled_one_request_a_day(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    httpserver: HTTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OKRSYNC_WEB_HEADER_X_API_KEY", "sekrit-key-98765")
    asked: list[tuple[str, str]] = []

    def answer(req: Request) -> Response:
        asked.append((req.path, req.get_data(as_text=True)))
        body = {"count": len(asked), "echo": req.headers.get("X-Api-Key")}
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/stats/2026-10-03").respond_with_data(
        "boom sekrit-key-98765", status=400
    )
    httpserver.expect_request(re.compile("^/.*")).respond_with_handler(answer)
    url = httpserver.url_for("/").rstrip("/")
    (tmp_path / "okrs.yaml").write_text(
        f"""
period: {{name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}}
sources:
  web: {{type: http, url: "{url}", timeout: 5}}
objectives:
  - id: o
    title: O
    key_results:
      - {{id: bypath, source: web, path: "/stats/{{now}}", extract: count, target: 100}}
      - {{id: bybody, source: web, path: /q, method: POST, body: {{asof: "{{now}}"}},
          extract: count, target: 100}}
      - {{id: nonow, source: web, path: /fixed, extract: count, target: 100}}
"""
    )
    code, out, err = okr(tmp_path, capsys, "backfill", "--all", "--json")
    assert code == 1, err  # Oct 3 of `bypath` failed
    by_id = {k["id"]: k for k in json.loads(out)["krs"]}
    assert (by_id["bypath"]["written"], by_id["bypath"]["failed"]) == (9, 1)
    assert (by_id["bybody"]["written"], by_id["bybody"]["requests"]) == (10, 10)
    assert "has no {now}" in by_id["nonow"]["skipped_reason"]
    assert ("/q", '{"asof": "2026-10-07"}') in asked
    assert not any(path == "/fixed" for path, _ in asked)
    conn = sqlite3.connect(tmp_path / "x.db")
    dump = "\n".join(conn.iterdump())
    conn.close()
    assert "sekrit-key-98765" not in dump + out + err  # the echoed header is redacted
    code, _, err = okr(tmp_path, capsys, "backfill", "nonow")
    assert code == 2 and "has no {now}" in err


def test_after_replace_every_view_hides_superseded_rows_but_history_keeps_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sources: Sources, httpserver: HTTPServer
) -> None:
    write_config(tmp_path, httpserver)
    assert okr(tmp_path, capsys, "backfill", "resolved")[0] == 0
    write_config(tmp_path, httpserver, jql='project = NEW AND resolved <= "{now}"')
    assert okr(tmp_path, capsys, "backfill", "resolved", "--replace")[0] == 0
    code, out, _ = okr(tmp_path, capsys, "status", "--json", "--now", "2026-10-05T06:00:00Z")
    kr = json.loads(out)["objectives"][0]["key_results"][0]
    assert (kr["value"], kr["backfilled"]) == (1012.0, True)
    code, out, _ = okr(tmp_path, capsys, "history", "resolved", "--json")
    rows = json.loads(out)
    assert len(rows) == 20 and sum(r["superseded"] for r in rows) == 10
    assert all(r["backfilled"] for r in rows)
    code, out, _ = okr(tmp_path, capsys, "explain", "resolved", "--json")
    shown = json.loads(out)["measurement"]
    assert shown["backfilled"] is True and shown["run"]["kind"] == "backfill"
    assert "project = NEW" in shown["query"]
    code, out, _ = okr(tmp_path, capsys, "report", "--md", "-")
    assert code == 0
    # the forecast is fitted on the 10 shown values (1000 + 3 a day), not the superseded
    assert "from 10 values" in out and "1,027" in out


def test_prometheus_down_fails_every_point_stores_nothing_and_marks_nothing_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "okrs.yaml").write_text(
        """
period: {name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}
sources:
  prom: {type: prometheus, url: "http://127.0.0.1:9", timeout: 2}
objectives:
  - id: o
    title: O
    key_results:
      - {id: lat, source: prom, query: 'up{job="x"}', target: 1}
"""
    )
    code, out, err = okr(tmp_path, capsys, "backfill", "lat", "--json")
    assert code == 1, err
    (kr,) = json.loads(out)["krs"]
    assert (kr["points"], kr["written"], kr["failed"], kr["requests"]) == (10, 0, 10, 1)
    assert "connection refused" in kr["failures"][0]["error"]
    conn = sqlite3.connect(tmp_path / "x.db")
    assert conn.execute("SELECT count(*) FROM measurements").fetchone() == (0,)
    conn.close()
    code, out, _ = okr(tmp_path, capsys, "status", "--json")
    shown = json.loads(out)["objectives"][0]["key_results"][0]
    assert (shown["status"], shown["error"]) == ("no_data", None)


def test_json_report_has_the_contract_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sources: Sources, httpserver: HTTPServer
) -> None:
    write_config(tmp_path, httpserver)
    for extra in (["--dry-run"], []):
        code, out, _ = okr(tmp_path, capsys, "backfill", "--all", "--json", *extra)
        assert code == 0
        report = json.loads(out)
        keys = {"id", "points", "written", "skipped_existing", "failed", "requests"}
        assert all(keys | {"skipped_reason"} <= set(k) for k in report["krs"])
        assert all(isinstance(n, int) for n in report["requests"].values())
        assert [k["id"] for k in report["krs"]] == [
            "resolved",
            "merged",
            "open-now",
            "ratio",
            "postmortems",
        ]


def test_a_live_value_exactly_half_a_step_away_does_not_count(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sources: Sources,
    httpserver: HTTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ "within half a step" read strictly: a live value at 12:00 is near neither midnight,
    so both neighbours are measured (documents the chosen boundary)."""
    write_config(tmp_path, httpserver)
    pin_cli_clock(monkeypatch, datetime(2026, 10, 4, 12, tzinfo=UTC))
    assert okr(tmp_path, capsys, "sync", "--once", "--only", "resolved")[0] == 0
    pin_cli_clock(monkeypatch, datetime(2026, 10, 4, 11, 59, 59, tzinfo=UTC))
    assert okr(tmp_path, capsys, "sync", "--once", "--only", "merged")[0] == 0
    pin_cli_clock(monkeypatch, NOW)
    _, out, _ = okr(tmp_path, capsys, "backfill", "resolved", "merged", "--json")
    krs = {k["id"]: k for k in json.loads(out)["krs"]}
    assert krs["resolved"]["skipped_existing"] == 0
    assert krs["merged"]["skipped_existing"] == 1


# ---- bugs the review found, fixed -------------------------------------------------------


def test_plan_after_a_backfill_still_compares_with_the_applied_run(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sources: Sources,
    httpserver: HTTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_config(tmp_path, httpserver)
    pin_cli_clock(monkeypatch, datetime(2026, 10, 4, 9, tzinfo=UTC))
    assert okr(tmp_path, capsys, "sync", "--once", "--only", "resolved")[0] == 0
    p = tmp_path / "okrs.yaml"
    new_kr = (
        '      - {id: merged2, source: gh, search: "merged:<{now} repo:x", start: 0, target: 9}\n'
    )
    p.write_text(
        p.read_text().replace("      - {id: postmortems", new_kr + "      - {id: postmortems")
    )
    pin_cli_clock(monkeypatch, NOW)
    assert okr(tmp_path, capsys, "backfill", "merged2")[0] == 0
    _, out, _ = okr(tmp_path, capsys, "plan")
    assert "(sync)" in out and "(backfill)" not in out
    assert "1 to add" in out and "\n+ merged2" in out


def test_prometheus_now_is_rendered_as_a_live_measurement_at_that_instant_would(
    tmp_path: Path,
) -> None:
    (tmp_path / "okrs.yaml").write_text(
        """
period: {name: 2026-Q4, start: 2026-10-01, end: 2026-12-31, timezone: America/New_York}
sources:
  prom: {type: prometheus, url: "http://127.0.0.1:9"}
objectives:
  - id: o
    title: O
    key_results:
      - {id: lat, source: prom, query: 'x{day="{now}"}', target: 1}
"""
    )
    config = load(tmp_path / "okrs.yaml")
    kr = next(k for _, k in config.key_results())
    at = datetime(2026, 11, 10, 2, tzinfo=UTC)  # Nov 9, 21:00 in New York
    assert query_fields(config, kr, at) == {"query": 'x{day="2026-11-09"}'}
    span = backfill_plan.Span(at, at, timedelta(hours=1))
    (request,) = backfill_plan.plan(config, [backfill_plan.Job(kr, [at])], span)
    assert request.fields == {"query": 'x{day="2026-11-09"}'}


def test_day_one_of_a_new_york_period_is_backfilled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sources: Sources, httpserver: HTTPServer
) -> None:
    write_config(tmp_path, httpserver)
    _tz(tmp_path, "America/New_York")
    code, _, err = okr(tmp_path, capsys, "backfill", "resolved", "--from", "2026-10-01")
    assert code == 0, err
    assert ("jira", 'project = OPS AND resolved <= "2026-10-01"') in sources.asked


def test_pacific_auckland_period_starts_with_its_first_day(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sources: Sources, httpserver: HTTPServer
) -> None:
    write_config(tmp_path, httpserver)
    _tz(tmp_path, "Pacific/Auckland")
    code, _, err = okr(tmp_path, capsys, "backfill", "resolved", "--json")
    assert code == 0, err
    rows = history(tmp_path, "resolved")
    assert rows[0]["measured_at"][:19] == "2026-10-01T00:00:00"
    assert rows[0]["query"] == 'project = OPS AND resolved <= "2026-10-01"'
    assert len(rows) == 10


def _slow_backfill(tmp_path: Path, sources: Sources, httpserver: HTTPServer) -> Any:
    write_config(tmp_path, httpserver)
    sources.delay = 6.0
    env = {
        **os.environ,
        "OKRSYNC_CONFIG": str(tmp_path / "okrs.yaml"),
        "OKRSYNC_DB": str(tmp_path / "x.db"),
    }
    argv = [sys.executable, "-m", "okrsync", "backfill", "merged", "--now", NOW.isoformat()]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not _started(tmp_path / "x.db") and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # its searches are sent (the server may still be busy with others')
    return proc


def _started(db: Path) -> bool:
    """Whether the backfill recorded its run (its signal handlers are in place by then;
    `sources.asked` is no sign: a killed process's queued requests reach the next test)."""
    if not db.exists():
        return False
    conn = sqlite3.connect(db, timeout=5)
    try:
        return bool(conn.execute("SELECT count(*) FROM runs").fetchone()[0] > 0)
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def test_ctrl_c_exits_promptly_while_a_request_is_in_flight(
    tmp_path: Path, sources: Sources, httpserver: HTTPServer
) -> None:
    proc = _slow_backfill(tmp_path, sources, httpserver)
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=2.5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("still running 2.5 s after Ctrl-C") from None
    assert proc.returncode == 130


def test_a_second_ctrl_c_exits_130_without_a_traceback(
    tmp_path: Path, sources: Sources, httpserver: HTTPServer
) -> None:
    proc = _slow_backfill(tmp_path, sources, httpserver)
    proc.send_signal(signal.SIGINT)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in err, err.decode()


def test_daemon_backfill_setting_is_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sources: Sources, httpserver: HTTPServer
) -> None:
    write_config(tmp_path, httpserver)
    p = tmp_path / "okrs.yaml"
    p.write_text(p.read_text().replace("sources:\n", "defaults: {backfill: true}\nsources:\n", 1))
    code, out, err = okr(tmp_path, capsys, "validate")
    assert code == 0, out + err


def test_dry_run_total_estimate_honours_the_search_rate_limit_whatever_the_concurrency(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OKRSYNC_GH_TOKEN", "ghp_x")
    (tmp_path / "okrs.yaml").write_text(
        """
period: {name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}
sources:
  gh: {type: github, url: "http://127.0.0.1:9/api/v3", max_concurrency: 4}
objectives:
  - id: o
    title: O
    key_results:
      - {id: m, source: gh, search: "merged:<{now}", target: 1}
"""
    )
    code, out, _ = okr(
        tmp_path, capsys, "backfill", "m", "--dry-run", "--json", "--now", "2026-12-29"
    )
    assert code == 0 and not (tmp_path / "x.db").exists()
    report = json.loads(out)
    assert report["krs"][0]["requests"] == 90
    assert report["estimated_seconds"] >= 170  # 90 searches at 30 a minute: 3 minutes
