"""`okrsync backfill` end to end on loopback Jira (Data Center) and GitHub fakes that
answer by the as-of date written into the JQL or search string."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from backfill_sources import Sources, merged_by, resolved_by, stored
from cli_runs import okr
from clock import pin_cli_clock
from pytest_httpserver import HTTPServer

NOW = datetime(2026, 10, 10, 12, tzinfo=UTC)


def write_config(tmp_path: Path, server: HTTPServer, *, jql: str | None = None) -> None:
    url = server.url_for("/").rstrip("/")
    jql = jql or 'project = OPS AND resolved <= "{now}"'
    (tmp_path / "okrs.yaml").write_text(
        f"""
period: {{name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}}
sources:
  jira: {{type: jira, url: "{url}", deployment: datacenter, timeout: 5}}
  gh: {{type: github, url: "{url}/api/v3", timeout: 5}}
objectives:
  - id: ops
    title: Ops
    key_results:
      - {{id: resolved, source: jira, jql: '{jql}', start: 0, target: 300}}
      - {{id: merged, source: gh, search: "repo:acme/api is:pr is:merged merged:<{{now}}",
          start: 0, target: 200}}
      - {{id: open-now, source: jira, jql: "project = OPS AND resolution is EMPTY",
          start: 50, target: 0}}
      - {{id: ratio, formula: "a / b * 100", start: 0, target: 100,
          inputs: {{a: {{source: jira, jql: 'resolved <= "{{now}}"'}},
                    b: {{source: gh, search: "merged:<{{now}}"}}}}}}
      - {{id: postmortems, source: manual, start: 0, target: 4}}
"""
    )


def history(tmp_path: Path, kr: str) -> list[dict[str, Any]]:
    return stored(tmp_path / "x.db", kr)


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    pin_cli_clock(monkeypatch, NOW)


def test_jira_backfill_measures_each_day_at_midnight_utc_with_that_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sources: Sources, httpserver: HTTPServer
) -> None:
    write_config(tmp_path, httpserver)
    code, out, err = okr(tmp_path, capsys, "backfill", "resolved", "--json")
    assert code == 0, err
    report = json.loads(out)
    (kr,) = report["krs"]
    # Oct 1 .. Oct 10 at 00:00 UTC (now is Oct 10 12:00): 10 points, one request each
    assert (kr["points"], kr["written"], kr["failed"], kr["requests"]) == (10, 10, 0, 10)
    assert report["requests"] == {"jira": 10}
    rows = history(tmp_path, "resolved")
    assert [r["measured_at"][:19] for r in rows] == [
        f"2026-10-{d:02d}T00:00:00" for d in range(1, 11)
    ]
    assert [r["value"] for r in rows] == [resolved_by(date(2026, 10, d)) for d in range(1, 11)]
    assert rows[3]["query"] == 'project = OPS AND resolved <= "2026-10-04"'
    assert all(r["backfilled"] == 1 and r["kind"] == "backfill" for r in rows)
    # progress and status as of each instant: Oct 4 has 9 of 300 resolved
    assert rows[3]["progress"] == pytest.approx(9 / 300)
    assert rows[0]["status"] == "on_track"


def test_same_backfill_twice_writes_nothing_and_asks_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sources: Sources, httpserver: HTTPServer
) -> None:
    write_config(tmp_path, httpserver)
    assert okr(tmp_path, capsys, "backfill", "resolved", "merged")[0] == 0
    asked = len(sources.asked)
    code, out, _ = okr(tmp_path, capsys, "backfill", "resolved", "merged", "--json")
    assert code == 0
    krs = json.loads(out)["krs"]
    assert [(k["written"], k["skipped_existing"]) for k in krs] == [(0, 10), (0, 10)]
    assert len(sources.asked) == asked
    assert len(history(tmp_path, "merged")) == 10


def test_query_without_now_is_skipped_with_its_reason_and_named_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sources: Sources, httpserver: HTTPServer
) -> None:
    write_config(tmp_path, httpserver)
    code, out, _ = okr(tmp_path, capsys, "backfill", "--all", "--json")
    assert code == 0
    by_id = {k["id"]: k for k in json.loads(out)["krs"]}
    assert by_id["open-now"]["skipped_reason"].startswith(
        "jira query has no {now}: today's answer says nothing about 2026-10-01"
    )
    assert by_id["open-now"]["written"] == 0
    assert "manual" in by_id["postmortems"]["skipped_reason"]
    assert by_id["ratio"]["written"] == 10  # a formula whose inputs all use {now}
    assert history(tmp_path, "open-now") == []
    assert not any("resolution is EMPTY" in q for _, q in sources.asked)
    code, _, err = okr(tmp_path, capsys, "backfill", "open-now")
    assert code == 2
    assert "open-now" in err and "has no {now}" in err


def test_formula_point_is_computed_from_its_inputs_on_that_day(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sources: Sources, httpserver: HTTPServer
) -> None:
    write_config(tmp_path, httpserver)
    assert okr(tmp_path, capsys, "backfill", "ratio", "--from", "2026-10-05")[0] == 0
    rows = history(tmp_path, "ratio")
    assert len(rows) == 6
    d = date(2026, 10, 7)
    assert rows[2]["value"] == pytest.approx(resolved_by(d) / merged_by(d) * 100)
    assert json.loads(rows[2]["inputs"]) == {"a": resolved_by(d), "b": merged_by(d)}


def test_failed_points_are_reported_not_stored_and_a_rerun_fills_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sources: Sources, httpserver: HTTPServer
) -> None:
    write_config(tmp_path, httpserver)
    sources.fail = {"2026-10-03", "2026-10-06"}
    code, out, _ = okr(tmp_path, capsys, "backfill", "resolved")
    assert code == 1
    assert "2 failed" in out and "2026-10-03T00:00:00" in out and "HTTP 500" in out
    assert len(history(tmp_path, "resolved")) == 8
    # a backfill failure is never recorded as the KR's error (nothing to go stale on)
    assert all(r["error"] is None for r in history(tmp_path, "resolved"))
    code, out, _ = okr(tmp_path, capsys, "status", "--json", "--now", "2026-10-10T01:00:00Z")
    assert "HTTP 500" not in out and '"status": "stale"' not in out
    sources.fail = set()
    code, out, _ = okr(tmp_path, capsys, "backfill", "resolved", "--json")
    assert code == 0
    (kr,) = json.loads(out)["krs"]
    assert (kr["written"], kr["skipped_existing"]) == (2, 8)


def test_live_measurement_within_half_a_step_is_not_duplicated(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sources: Sources,
    httpserver: HTTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_config(tmp_path, httpserver)
    pin_cli_clock(monkeypatch, datetime(2026, 10, 4, 9, tzinfo=UTC))
    assert okr(tmp_path, capsys, "sync", "--once", "--only", "resolved")[0] == 0
    pin_cli_clock(monkeypatch, NOW)
    code, out, _ = okr(tmp_path, capsys, "backfill", "resolved", "--json")
    assert code == 0
    (kr,) = json.loads(out)["krs"]
    # Oct 4 09:00 is within 12h of Oct 4 00:00: that day is already measured
    assert (kr["written"], kr["skipped_existing"]) == (9, 1)


def test_step_must_be_whole_days_for_dated_sources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sources: Sources, httpserver: HTTPServer
) -> None:
    write_config(tmp_path, httpserver)
    code, _, err = okr(tmp_path, capsys, "backfill", "resolved", "--step", "6h")
    assert code == 2
    assert "whole days" in err and "{now}" in err
    assert sources.asked == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["nope"], "unknown key result"),
        (["resolved", "--from", "2026-10-08", "--to", "2026-10-03"], "is after --to"),
        (["resolved", "--from", "2026-09-01"], "before the period"),
        (["resolved", "--to", "2026-11-01"], "after now"),
        (["resolved", "--step", "soon"], "--step"),
        ([], "--all"),
    ],
)
def test_bad_usage_is_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sources: Sources,
    httpserver: HTTPServer,
    args: list[str],
    says: str,
) -> None:
    write_config(tmp_path, httpserver)
    code, _, err = okr(tmp_path, capsys, "backfill", *args)
    assert code == 2, err
    assert says in err


def test_dry_run_prints_the_plan_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sources: Sources, httpserver: HTTPServer
) -> None:
    write_config(tmp_path, httpserver)
    code, out, _ = okr(tmp_path, capsys, "backfill", "--all", "--dry-run")
    assert code == 0
    assert sources.asked == [] and not (tmp_path / "x.db").exists()
    assert "dry run" in out
    line = next(x for x in out.splitlines() if " merged " in x)
    # 10 GitHub searches at 30 a minute (with a token): about 20 s
    assert "10 to measure" in line and "10 requests" in line and "about 20s" in line
    assert "skipped: jira query has no {now}" in out
    code, out, _ = okr(tmp_path, capsys, "backfill", "--all", "--dry-run", "--json")
    report = json.loads(out)
    assert report["dry_run"] is True
    assert report["requests"] == {"jira": 20, "gh": 20}


def test_replace_supersedes_older_backfilled_points_and_never_touches_live_ones(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sources: Sources,
    httpserver: HTTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_config(tmp_path, httpserver)
    assert okr(tmp_path, capsys, "backfill", "resolved", "--to", "2026-10-09")[0] == 0
    pin_cli_clock(monkeypatch, datetime(2026, 10, 10, 3, tzinfo=UTC))
    assert okr(tmp_path, capsys, "sync", "--once", "--only", "resolved")[0] == 0
    pin_cli_clock(monkeypatch, NOW)
    write_config(tmp_path, httpserver, jql='project = NEW AND resolved <= "{now}"')
    code, out, err = okr(tmp_path, capsys, "backfill", "resolved", "--replace", "--json")
    assert code == 0, err
    (kr,) = json.loads(out)["krs"]
    # Oct 1..9 re-measured; Oct 10 00:00 has the live 03:00 value within half a day
    assert (kr["written"], kr["skipped_existing"], kr["superseded"]) == (9, 1, 9)
    rows = history(tmp_path, "resolved")
    old = [r for r in rows if r["superseded"]]
    new = [r for r in rows if r["backfilled"] and not r["superseded"]]
    live = [r for r in rows if not r["backfilled"]]
    assert len(old) == 9 and all("project = OPS" in r["query"] for r in old)
    assert [r["value"] for r in new] == [
        resolved_by(date(2026, 10, d)) + 1000 for d in range(1, 10)
    ]
    assert len(live) == 1 and live[0]["superseded"] == 0 and "project = OPS" in live[0]["query"]
    # run again: nothing left to replace but the points it just wrote, which it re-measures
    code, out, _ = okr(tmp_path, capsys, "backfill", "resolved", "--json")
    (kr,) = json.loads(out)["krs"]
    assert (kr["written"], kr["skipped_existing"]) == (0, 10)


def test_replace_keeps_the_old_point_where_re_measuring_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sources: Sources, httpserver: HTTPServer
) -> None:
    write_config(tmp_path, httpserver)
    assert okr(tmp_path, capsys, "backfill", "resolved")[0] == 0
    write_config(tmp_path, httpserver, jql='project = NEW AND resolved <= "{now}"')
    sources.fail = {"2026-10-05"}
    code, out, _ = okr(tmp_path, capsys, "backfill", "resolved", "--replace", "--json")
    assert code == 1
    (kr,) = json.loads(out)["krs"]
    assert (kr["written"], kr["failed"], kr["superseded"]) == (9, 1, 9)
    shown = [r for r in history(tmp_path, "resolved") if not r["superseded"]]
    assert len(shown) == 10  # Oct 5 keeps its older value rather than a hole
    assert [r["value"] for r in shown if r["measured_at"].startswith("2026-10-05")] == [12]


def test_sigterm_keeps_finished_krs_and_a_rerun_continues(
    tmp_path: Path, sources: Sources, httpserver: HTTPServer
) -> None:
    write_config(tmp_path, httpserver)
    sources.delay = 0.5  # GitHub is slow: `resolved` is stored long before `merged` is
    env = {
        **os.environ,
        "OKRSYNC_CONFIG": str(tmp_path / "okrs.yaml"),
        "OKRSYNC_DB": str(tmp_path / "x.db"),
    }
    argv = [sys.executable, "-m", "okrsync", "backfill", "resolved", "merged"]
    argv += ["--now", NOW.isoformat()]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if (tmp_path / "x.db").exists() and len(_rows(tmp_path, "resolved")) == 10:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert b"run the same backfill again to continue" in err
    assert len(_rows(tmp_path, "resolved")) == 10
    assert len(_rows(tmp_path, "merged")) == 0  # interrupted: nothing half-written
    sources.delay = 0.0
    done = subprocess.run([*argv, "--json"], env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    krs = {k["id"]: k for k in json.loads(done.stdout)["krs"]}
    assert (krs["resolved"]["written"], krs["merged"]["written"]) == (0, 10)


def _rows(tmp_path: Path, kr: str) -> list[tuple[str]]:
    conn = sqlite3.connect(tmp_path / "x.db", timeout=5)
    try:
        return conn.execute("SELECT measured_at FROM measurements WHERE kr_id = ?", [kr]).fetchall()
    except sqlite3.OperationalError:  # the schema is not there yet
        return []
    finally:
        conn.close()


def test_plan_compares_with_the_last_applied_run_not_a_backfill(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sources: Sources, httpserver: HTTPServer
) -> None:
    write_config(tmp_path, httpserver)
    assert okr(tmp_path, capsys, "sync", "--once", "--only", "merged")[0] == 0
    assert okr(tmp_path, capsys, "backfill", "resolved")[0] == 0
    code, out, err = okr(tmp_path, capsys, "plan", "--only", "merged", "--json")
    assert code in (0, 2), err
    assert json.loads(out)["baseline"]["kind"] == "sync"


def test_a_refused_backfill_creates_no_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sources: Sources, httpserver: HTTPServer
) -> None:
    write_config(tmp_path, httpserver)
    code, _, err = okr(tmp_path, capsys, "backfill", "open-now")
    assert code == 2 and "has no {now}" in err
    assert not (tmp_path / "x.db").exists()


def test_backfill_gives_the_same_history_on_postgres(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sources: Sources,
    httpserver: HTTPServer,
    postgres_url: str,
) -> None:
    """`backfill --all`, again (nothing new), then `--replace`: the same history and the
    same reports on a PostgreSQL store as on SQLite."""
    from okrsync.cli.main import main

    write_config(tmp_path, httpserver)
    seen = []
    for db in (str(tmp_path / "x.db"), postgres_url):
        runs = []
        for extra in ([], [], ["--replace", "resolved"]):
            capsys.readouterr()
            argv = ["backfill", *(extra or ["--all"]), "--json"]
            code = main([*argv, "--config", str(tmp_path / "okrs.yaml"), "--db", db])
            report = json.loads(capsys.readouterr().out)
            runs.append(
                (code, [(k["id"], k["written"], k["skipped_existing"]) for k in report["krs"]])
            )
        capsys.readouterr()
        assert main(["history", "resolved", "--json", "--db", db]) == 0
        rows = json.loads(capsys.readouterr().out)
        values = [(r["measured_at"], r["value"], r["backfilled"], r["superseded"]) for r in rows]
        seen.append((runs, values))
    assert seen[0] == seen[1] and len(seen[0][1]) >= 10
