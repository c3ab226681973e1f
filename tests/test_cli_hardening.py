"""The CLI as people type it, and a store that is not okrsync's: each a reproduced defect."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from clock import pin_cli_clock, with_running_period
from test_cli import CONFIG, run

from okrsync.cli.parser import parser


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config/ with CONFIG in a temporary cwd, the clock pinned inside its period."""
    pin_cli_clock(monkeypatch)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "okrs.yaml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("argv", [["sync", "--once"], ["run", "--once"], ["run"]])
def test_measuring_commands_refuse_now(
    env: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """sync and run measure the sources as they are now: --now is refused, nothing stored."""
    code, out, err = run(capsys, *argv, "--now", "2026-11-01")
    assert code == 2 and out == ""
    assert "takes no --now" in err and "status --now" in err
    assert not (env / "okrsync.db").exists()


def test_only_given_twice_means_both(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--only a --only b` and `--only a b` both mean a and b."""
    both = parser().parse_args(["sync", "--once", "--only", "a", "--only", "b"])
    spaced = parser().parse_args(["sync", "--once", "--only", "a", "b"])
    assert both.only == spaced.only == ["a", "b"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--log-level", "debug", "validate"],
        ["validate", "--log-level", "debug"],
        ["validate", "--log-format", "json", "--db", "x.db"],
        ["--config", "config", "history", "uptime"],
        ["history", "uptime", "--config", "config"],
    ],
)
def test_common_flags_before_or_after_the_command(argv: list[str]) -> None:
    """Every command takes --config, --db, --log-level and --log-format on either side."""
    args = parser().parse_args(argv)
    assert args.command in ("validate", "history")


def test_flag_after_the_command_wins() -> None:
    """Given on both sides, the flag after the command name applies."""
    args = parser().parse_args(["--log-level", "error", "validate", "--log-level", "debug"])
    assert args.log_level == "debug"
    assert parser().parse_args(["validate"]).log_level is None


@pytest.mark.parametrize(("text", "seconds"), [("3s", 3), ("1m", 60), ("2.5", 2.5), ("0", 0)])
def test_grace_takes_a_duration(text: str, seconds: float) -> None:
    """--grace reads like every other time in okrsync; a bare number stays seconds."""
    assert parser().parse_args(["run", "--grace", text]).grace == seconds
    assert parser().parse_args(["sync", "--once", "--grace", text]).grace == seconds


def test_grace_rejects_nonsense(capsys: pytest.CaptureFixture[str]) -> None:
    """A grace that is not a duration is a usage error (exit 2) naming the forms."""
    with pytest.raises(SystemExit) as info:
        parser().parse_args(["run", "--grace", "soon"])
    assert info.value.code == 2 and "30s, 5m" in capsys.readouterr().err


def test_help_states_the_real_default_log_level(capsys: pytest.CaptureFixture[str]) -> None:
    """--help says warning by default and info for `run`, as the code does."""
    with pytest.raises(SystemExit):
        parser().parse_args(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "default warning, info for `okrsync run`" in out


def test_read_only_commands_never_touch_a_foreign_database(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """status and history on another program's SQLite file: exit 3, one line, file unchanged."""
    other = env / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    before = digest(other)
    for argv in (["status", "--db", str(other)], ["history", "uptime", "--db", str(other)]):
        code, out, err = run(capsys, *argv)
        assert code == 3 and out == "" and len(err.strip().splitlines()) == 1
        assert "not an okrsync store" in err
    assert digest(other) == before
    with sqlite3.connect(other) as conn:
        assert [r[0] for r in conn.execute("select name from sqlite_master")] == ["invoices"]


def test_writers_refuse_a_foreign_database_too(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """checkin and sync never create okrsync's tables inside someone else's database."""
    other = env / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    before = digest(other)
    code, _, err = run(capsys, "checkin", "postmortems", "3", "--db", str(other))
    assert code == 3 and "not an okrsync store" in err
    assert digest(other) == before


def test_status_does_not_migrate_or_write_an_okrsync_store(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reading commands leave the store byte for byte as they found it."""
    assert run(capsys, "checkin", "postmortems", "4", "--now", "2026-11-15")[0] == 0
    db = env / "okrsync.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = digest(db)
    assert run(capsys, "status", "--json")[0] == 0
    assert run(capsys, "history", "postmortems")[0] == 0
    assert digest(db) == before


def test_a_dropped_table_is_a_store_error_not_a_silent_recreation(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """checkin on a store whose measurements table is gone: exit 3, the table not recreated."""
    assert run(capsys, "checkin", "postmortems", "4")[0] == 0
    with sqlite3.connect(env / "okrsync.db") as conn:
        conn.execute("DROP TABLE measurements")
    code, _, err = run(capsys, "checkin", "postmortems", "5")
    assert code == 3 and "no table measurements" in err
    code, _, err = run(capsys, "history", "postmortems")
    assert code == 3 and "no table measurements" in err
    with sqlite3.connect(env / "okrsync.db") as conn:
        names = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
    assert "measurements" not in names


def test_empty_or_missing_store_reads_as_empty(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """status before any sync, or on an empty file, shows no data and creates nothing."""
    code, out, _ = run(capsys, "status", "--db", str(env / "none.db"))
    assert code == 0 and "no_data" in out and not (env / "none.db").exists()
    (env / "empty.db").write_bytes(b"")
    assert run(capsys, "status", "--db", str(env / "empty.db"))[0] == 0
    assert (env / "empty.db").read_bytes() == b""


def test_summary_counts_queries_and_requests_apart(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One query to a refused source is 1 query and 3 HTTP requests (the retries)."""
    code, out, _ = run(capsys, "sync", "--once", "--grace", "1s")
    assert code == 1
    assert "queries per source: prom=1; requests per source: prom=3 (HTTP, retries included)" in out


def test_percentages_round_half_up() -> None:
    """0.625 shows as 63%, as people round, not 62% (round half to even)."""
    from okrsync.cli.render import pct, percent

    assert (percent(0.625), percent(0.125), percent(0.994), percent(1.0)) == (63, 13, 99, 100)
    assert pct(0.625).strip() == "63%"


def test_counts_are_singular_for_one(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`1 source`, `1 problem`: no `1 sources` or `problem(s)`."""
    code, out, _ = run(capsys, "validate")
    assert code == 0 and "1 source," in out
    (env / "config" / "okrs.yaml").write_text(CONFIG.replace("owner: sre", "ownr: sre"))
    code, _, err = run(capsys, "validate")
    assert code == 2 and err.strip().endswith("(1 problem)")


def test_history_now_and_an_out_of_range_now(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """history --now shows what was known then; an unrepresentable --now is exit 2."""
    assert run(capsys, "checkin", "postmortems", "2", "--now", "2026-10-10")[0] == 0
    assert run(capsys, "checkin", "postmortems", "5", "--now", "2026-11-10")[0] == 0
    code, out, _ = run(capsys, "history", "postmortems", "--json", "--now", "2026-11-01")
    assert code == 0 and [r["value"] for r in __import__("json").loads(out)] == [2]
    code, _, err = run(capsys, "status", "--now", "0001-01-01T00:00:00+14:00")
    assert code == 2 and "outside the times" in err


def test_ctrl_c_during_sync_stops_within_grace(tmp_path: Path) -> None:
    """SIGINT while a source hangs: okrsync leaves after --grace (exit 130), not after timeout."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    port = silent.getsockname()[1]
    cfg = tmp_path / "okrs.yaml"
    cfg.write_text(  # a subprocess on the real clock: a period that contains today
        with_running_period(CONFIG)
        .replace("http://127.0.0.1:9", f"http://127.0.0.1:{port}")
        .replace('url: "', 'timeout: 60, url: "')
    )
    env = {**os.environ, "OKRSYNC_LOG_LEVEL": "warning"}
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "okrsync", "sync", "--once", "--grace", "1s"),
            *("--config", str(cfg), "--db", str(tmp_path / "db")),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)  # the fetch is in flight by now
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        took = time.monotonic() - began
    finally:
        proc.kill()
        silent.close()
    assert proc.returncode == 130
    assert "interrupted" in err and 0.9 <= took < 5  # waited the grace, not the 60 s timeout


def test_listen_on_port_zero_logs_the_port_it_bound(tmp_path: Path) -> None:
    """`run --listen 127.0.0.1:0` says in its `serving` line which port it got, and serves it."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    cfg = tmp_path / "okrs.yaml"
    cfg.write_text(
        "period: {name: Q, start: 2026-10-01, end: 2026-12-31}\n"
        "objectives:\n  - id: o\n    title: O\n    key_results:\n"
        "      - {id: k, source: manual, target: 3}\n"
    )
    argv = [sys.executable, "-m", "okrsync", "run", "--listen", "127.0.0.1:0"]
    argv += ["--log-format", "json", "--config", str(cfg), "--db", str(tmp_path / "db")]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 20
        listen = None
        assert proc.stderr is not None
        while listen is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            event = json.loads(line)
            if event.get("event") == "serving":
                listen = event["listen"]
        assert listen is not None and listen.startswith("127.0.0.1:")
        port = int(listen.rsplit(":", 1)[1])
        assert port != 0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            assert answer.status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait(timeout=5)


def test_a_huge_value_is_shown_not_a_crash(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """1e308 checked in: history, status and the check-in line print it; nothing exits 70."""
    code, out, _ = run(capsys, "checkin", "postmortems", "1e308")
    assert code == 0 and "progress 100%" in out
    code, out, _ = run(capsys, "history", "postmortems")
    assert code == 0 and "1e+308" in out
    code, out, _ = run(capsys, "status")
    assert code == 0 and "1e+308" in out and len(max(out.splitlines(), key=len)) < 200


def test_a_value_too_large_for_progress_is_that_krs_error() -> None:
    """A value whose progress overflows is stored as an error, never as an infinite progress."""
    from datetime import UTC, datetime

    from okrsync.config.loader import load
    from okrsync.measure.measurement import Measurement
    from okrsync.progress.definitions import from_config
    from okrsync.progress.maths import Observation
    from okrsync.progress.status import assess

    config = load(Path(__file__).parent.parent / "config")
    kr = next(k for _, k in config.key_results() if k.id == "api-uptime")
    now = datetime(2026, 11, 1, tzinfo=UTC)
    defs = from_config(config)
    found = defs.kr(kr.id)
    assert found is not None
    wide = replace(found, start=-1e308, target=1e308)
    assessed = assess(defs, wide, Measurement(kr.id, now, "prom", "q", 1e308), Observation())
    assert assessed.value is None and assessed.progress is None
    assert "too large" in str(assessed.error) and assessed.status == "no_data"


def test_grace_takes_fractions_of_a_second() -> None:
    """`--grace 0.5s` is as good as `--grace 0.5`."""
    assert parser().parse_args(["run", "--grace", "0.5s"]).grace == 0.5
