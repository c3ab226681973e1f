"""The command line end to end (in-process): exit codes, output shapes, one-line errors."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from clock import pin_cli_clock

from okrsync.cli.main import main

CONFIG = """\
period: {name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}
sources:
  prom: {type: prometheus, url: "http://127.0.0.1:9"}
objectives:
  - {id: top, title: Top, owner: ceo}
  - id: reliability
    title: Reliable
    owner: sre
    parent: top
    key_results:
      - {id: postmortems, title: Postmortems, source: manual, start: 0, target: 10, weight: 3}
      - {id: uptime, source: prom, query: up, start: 99, target: 99.9, unit: "%"}
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config/ with CONFIG in a temporary cwd, the clock pinned inside its period."""
    pin_cli_clock(monkeypatch)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "okrs.yaml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_ok_and_invalid(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """validate exits 0 on the default config/ and 2 with file:line when a key is wrong."""
    code, out, _ = run(capsys, "validate")
    assert code == 0 and "2 objectives, 2 key results" in out
    (env / "config" / "okrs.yaml").write_text(CONFIG.replace("target: 10", "targte: 10"))
    code, _, err = run(capsys, "validate")
    assert code == 2
    assert "config/okrs.yaml:11: objectives[1].key_results[0].targte: unknown key" in err


def test_checkin_before_sync_then_status_json(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """checkin creates the store; status --json shows the tree with rolled-up progress."""
    code, out, _ = run(
        capsys, "checkin", "postmortems", "4", "--note", "Nov", "--now", "2026-11-15"
    )
    assert code == 0 and "progress 40%" in out
    code, out, _ = run(capsys, "status", "--json", "--now", "2026-11-16T00:00:00Z")
    assert code == 0
    doc = json.loads(out)
    [top] = doc["objectives"]
    assert (top["id"], top["owner"], top["key_results"]) == ("top", "ceo", [])
    [child] = top["children"]
    kr = {k["id"]: k for k in child["key_results"]}
    assert kr["postmortems"]["value"] == 4 and kr["postmortems"]["progress"] == pytest.approx(0.4)
    assert kr["postmortems"]["measured_at"] == "2026-11-15T00:00:00Z"
    assert kr["uptime"]["status"] == "no_data" and kr["uptime"]["value"] is None
    # expected at 2026-11-16: 46 of 92 days = 0.5; 0.4 is within 0.10 -> on_track
    assert doc["expected_progress"] == pytest.approx(0.5)
    assert kr["postmortems"]["status"] == "on_track"
    assert child["progress"] == pytest.approx(0.4) and child["items_without_data"] == 1
    assert top["progress"] == pytest.approx(0.4) and top["status"] == "on_track"


def test_status_now_sees_only_the_past(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """status --now T uses the latest measurement at or before T."""
    run(capsys, "checkin", "postmortems", "2", "--now", "2026-10-10")
    run(capsys, "checkin", "postmortems", "9", "--now", "2026-12-01")
    for now, value in (("2026-10-09", None), ("2026-11-01", 2), ("2026-12-02", 9)):
        _, out, _ = run(capsys, "status", "--json", "--now", now)
        kr = json.loads(out)["objectives"][0]["children"][0]["key_results"][0]
        assert kr["value"] == value


def test_history_is_newest_first_with_store_fields(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """history --json lists every measurement newest first with the store's fields."""
    run(capsys, "checkin", "uptime", "99.5", "--now", "2026-10-10")
    run(capsys, "checkin", "uptime", "99.7", "--note", "fixed", "--now", "2026-10-11")
    code, out, _ = run(capsys, "history", "uptime", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["value"] for r in rows] == [99.7, 99.5]
    assert rows[0]["manual"] is True and rows[0]["note"] == "fixed"
    assert set(rows[0]) >= {
        "kr_id",
        "value",
        "progress",
        "status",
        "measured_at",
        "source",
        "query",
        "inputs",
        "error",
        "run_id",
    }


def test_bad_input_is_one_line_and_nonzero(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Unknown KR, non-numeric value, bad --now and a newer store are one-line errors."""
    code, _, err = run(capsys, "checkin", "nope", "1")
    assert code == 2 and "no key result 'nope'" in err and "Traceback" not in err
    code, _, err = run(capsys, "checkin", "postmortems", "lots")
    assert code == 2 and "VALUE must be a number" in err
    code, _, err = run(capsys, "status", "--now", "yesterday")
    assert code == 2 and "not an ISO-8601 time" in err
    code, _, err = run(capsys, "history", "nope")
    assert code == 2
    conn = sqlite3.connect(env / "okrsync.db")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    code, _, err = run(capsys, "checkin", "postmortems", "1")
    assert code == 3 and "schema version 99" in err and len(err.strip().splitlines()) == 1


def test_sync_failure_exit_1_and_dry_run_stores_nothing(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refused source fails its KR (exit 1) with its error; --dry-run writes no store."""
    code, out, _ = run(capsys, "sync", "--once", "--dry-run", "--only", "uptime")
    assert code == 1 and "connection refused" in out and "dry run" in out
    assert not (env / "okrsync.db").exists()
    code, out, _ = run(capsys, "sync", "--once")
    assert code == 1 and "requests per source: prom=" in out
    _, out, _ = run(capsys, "history", "uptime", "--json")
    assert "connection refused" in json.loads(out)[0]["error"]


def test_schema_matches_shipped_file(capsys: pytest.CaptureFixture[str]) -> None:
    """The JSON Schema shipped in config/ is what `okrsync schema` generates."""
    code, out, _ = run(capsys, "schema")
    shipped = Path(__file__).parent.parent / "config" / "okrsync.schema.json"
    assert code == 0 and json.loads(out) == json.loads(shipped.read_text())
    assert "key_results" in json.dumps(json.loads(out))


def test_token_never_reaches_logs_store_or_output(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source token read from the env is redacted from logs, stored errors and output."""
    import responses

    token = "s3cr3t-token-value-123"
    monkeypatch.setenv("OKRSYNC_PROM_TOKEN", token)
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.GET,
            "http://127.0.0.1:9/api/v1/query",
            status=400,
            json={"status": "error", "errorType": "bad_data", "error": f"bad token {token}"},
        )
        code, out, err = run(
            capsys, "--log-level", "debug", "--log-format", "json", "sync", "--once"
        )
    assert code == 1 and "bad token ***" in out
    _, history, _ = run(capsys, "history", "uptime", "--json")
    db = (env / "okrsync.db").read_bytes()
    assert token not in out + err + history and token.encode() not in db


def test_sync_shows_clamped_progress_with_raw_beside(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An overshooting KR shows 100% progress, with its raw progress beside it."""
    import responses

    body = {"status": "success", "data": {"resultType": "scalar", "result": [1.7e9, "100.8"]}}
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, "http://127.0.0.1:9/api/v1/query", json=body)
        code, out, _ = run(capsys, "sync", "--once")
    assert code == 0
    assert "✔ uptime = 100.8 %  progress 100% (raw 200%)  done" in out


def test_history_of_a_retired_kr_says_so(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A KR removed from config keeps its history, and history says it is retired."""
    run(capsys, "checkin", "uptime", "99.5", "--now", "2026-10-10")
    config = env / "config" / "okrs.yaml"
    config.write_text(
        CONFIG.replace(
            '      - {id: uptime, source: prom, query: up, start: 99, target: 99.9, unit: "%"}\n',
            "",
        )
    )
    run(capsys, "checkin", "postmortems", "1", "--now", "2026-10-11")
    code, out, _ = run(capsys, "history", "uptime")  # a check-in applies no config
    assert code == 0 and "retired" not in out and "99.5" in out
    assert run(capsys, "sync", "--once")[0] == 0  # a run does: uptime is retired
    code, out, _ = run(capsys, "history", "uptime")
    assert code == 0 and "uptime: retired at 2026-" in out and "99.5" in out
