"""Manual overrides of automated KRs: author, note, --until; what status, grade, history,
the daemon's view and the sinks' roll-up show while one holds and after it expires."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from concurrent.futures import wait
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clock import IN_Q4
from fakes import ScriptedConnector, factory
from provenance_runs import cli, measure, status_kr, when, write_config

from okrsync.cli.checkin import login_name
from okrsync.config.loader import load
from okrsync.measure.measurement import Measurement
from okrsync.progress.definitions import from_config
from okrsync.progress.maths import Observation, observe_held
from okrsync.service.daemon import Daemon
from okrsync.service.options import Options
from okrsync.sinks.enqueue import prepare
from okrsync.store.store import Store


@pytest.fixture
def tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config, with uptime measured 60 on Nov 1, then overridden to 90 on Nov 10 by ana
    until Nov 20, then measured 70 on Nov 15 (under the override)."""
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path)
    measure(
        tmp_path,
        "2026-11-01T00:00:00Z",
        {"up_ratio": 60, "sum(bugs_closed)": 1, "sum(bugs_opened)": 2},
    )
    return tmp_path


def override(capsys: pytest.CaptureFixture[str], tmp: Path) -> None:
    code, out, err = cli(
        capsys, tmp, "checkin", "uptime", "90", "--now", "2026-11-10T00:00:00Z",
        "--note", "exporter broken, INC-42", "--author", "ana", "--until", "2026-11-20",
    )  # fmt: skip
    assert code == 0, err
    assert "override until 2026-11-20T00:00:00Z" in out


def test_override_holds_until_its_expiry(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """While the override holds, an automated value recorded under it is stored but status
    shows the override, with its author, note and expiry."""
    override(capsys, tmp)
    measure(
        tmp, "2026-11-15T00:00:00Z", {"up_ratio": 70, "sum(bugs_closed)": 1, "sum(bugs_opened)": 2}
    )
    kr = status_kr(capsys, tmp, "2026-11-16T00:00:00Z", "uptime")
    assert kr["value"] == 90 and kr["manual"] is True
    assert kr["progress"] == pytest.approx(0.8)
    assert kr["override"] == {
        "author": "ana",
        "note": "exporter broken, INC-42",
        "until": "2026-11-20T00:00:00Z",
    }
    assert kr["status"] != "stale"  # failed attempts and age do not stale a holding override
    code, out, _ = cli(capsys, tmp, "status", "--now", "2026-11-16T00:00:00Z")
    assert code == 0 and "90 (override until 2026-11-20T00:00:00Z)" in out
    code, out, _ = cli(capsys, tmp, "grade", "--json", "--now", "2026-11-16T00:00:00Z")
    assert code == 0 and '"score": 0.8' in out
    code, out, _ = cli(capsys, tmp, "history", "uptime")
    assert "manual by ana until 2026-11-20T00:00:00.000000Z: exporter broken" in out
    assert "70" in out  # the automated value under it is in history too


def test_the_automated_value_recorded_meanwhile_shows_after_expiry(
    tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """From the expiry on, the latest automated value (taken during the override) shows."""
    override(capsys, tmp)
    measure(
        tmp, "2026-11-15T00:00:00Z", {"up_ratio": 70, "sum(bugs_closed)": 1, "sum(bugs_opened)": 2}
    )
    kr = status_kr(capsys, tmp, "2026-11-20T00:00:00Z", "uptime")
    assert kr["value"] == 70 and kr["manual"] is False and kr["override"] is None
    assert (
        kr["status"] == "stale"
    )  # 5 days old with every: 1d (stale after 3): honest about its age
    before = status_kr(capsys, tmp, "2026-11-19T23:59:59Z", "uptime")
    assert before["value"] == 90


def test_the_automated_row_keeps_its_own_progress(
    tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A row recorded under an override stores the progress of its own value."""
    override(capsys, tmp)
    measure(
        tmp, "2026-11-15T00:00:00Z", {"up_ratio": 70, "sum(bugs_closed)": 1, "sum(bugs_opened)": 2}
    )
    code, out, _ = cli(capsys, tmp, "history", "uptime", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["value"] for r in rows] == [70, 90, 60]
    assert rows[0]["progress"] == pytest.approx(0.4) and rows[0]["manual"] is False
    assert rows[1]["author"] == "ana" and rows[1]["until"] == "2026-11-20T00:00:00.000000Z"


def test_an_override_without_until_is_replaced_by_the_next_value(
    tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --until the next automated value replaces the check-in, as before."""
    code, _, err = cli(capsys, tmp, "checkin", "uptime", "90", "--now", "2026-11-10T00:00:00Z")
    assert code == 0, err
    assert status_kr(capsys, tmp, "2026-11-11T00:00:00Z", "uptime")["value"] == 90
    measure(
        tmp, "2026-11-15T00:00:00Z", {"up_ratio": 70, "sum(bugs_closed)": 1, "sum(bugs_opened)": 2}
    )
    kr = status_kr(capsys, tmp, "2026-11-15T00:10:00Z", "uptime")
    assert kr["value"] == 70 and kr["override"] is None


def test_a_later_checkin_replaces_a_holding_override(
    tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A newer check-in (without --until) ends the override: then the usual rule applies."""
    override(capsys, tmp)
    code, _, _ = cli(capsys, tmp, "checkin", "uptime", "80", "--now", "2026-11-12T00:00:00Z")
    assert code == 0
    kr = status_kr(capsys, tmp, "2026-11-12T01:00:00Z", "uptime")
    assert kr["value"] == 80 and kr["override"] is None


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--until", "2026-11-09"], "--until 2026-11-09 is not after --now (2026-11-10T00:00:00Z)"),
        (["--until", "2026-11-10T00:00:00Z"], "is not after --now"),
        (["--until", "soon"], "--until: 'soon' is not an ISO-8601 time"),
    ],
)
def test_until_not_in_the_future_is_exit_2(
    tmp: Path, capsys: pytest.CaptureFixture[str], extra: list[str], says: str
) -> None:
    """An --until at or before --now (or unreadable) is refused, and nothing is stored."""
    code, _, err = cli(capsys, tmp, "checkin", "uptime", "90", "--now", "2026-11-10", *extra)
    assert code == 2 and says in err
    count = sqlite3.connect(tmp / "x.db").execute("SELECT count(*) FROM measurements WHERE manual")
    assert count.fetchone()[0] == 0


def test_until_on_a_manual_kr_is_exit_2(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--until is only for automated KRs."""
    code, _, err = cli(
        capsys, tmp, "checkin", "postmortems", "3", "--now", "2026-11-10", "--until", "2026-12-01"
    )
    assert code == 2 and "--until is only for automated key results" in err


def test_author_defaults_to_the_login_name(
    tmp: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --author the check-in is by the login name (getpass)."""
    monkeypatch.setenv("LOGNAME", "zoe")
    monkeypatch.setenv("USER", "zoe")
    assert login_name() == "zoe"
    code, _, _ = cli(capsys, tmp, "checkin", "postmortems", "3", "--now", "2026-11-10")
    assert code == 0
    code, out, _ = cli(capsys, tmp, "history", "postmortems", "--json")
    assert json.loads(out)[0]["author"] == "zoe"


def test_login_name_falls_back_to_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    """No login name anywhere: 'unknown'."""

    def nobody() -> str:
        raise OSError("no passwd entry")

    monkeypatch.setattr("getpass.getuser", nobody)
    assert login_name() == "unknown"


def test_the_daemon_keeps_a_holding_override() -> None:
    """The daemon's in-memory view: an attempt under a holding override is only noted; from
    the expiry on, a new value replaces it."""
    until = when("2026-11-20")
    held = Observation(90, when("2026-11-10"), True, when("2026-11-10"), until=until, author="a")
    during = observe_held(held, 70, None, when("2026-11-15"), 0.4, "off_track")
    assert during.value == 90 and during.until == until
    assert during.attempted_at == when("2026-11-15")
    after = observe_held(held, 75, None, when("2026-11-21"), 0.5, "off_track")
    assert after.value == 75 and after.until is None


def test_sinks_keep_showing_the_override(tmp: Path) -> None:
    """While an override holds, automated rows under it are not pushed and other KRs'
    payloads roll the objective up from the override's value; once it has expired, the
    next automated value is pushed even when equal to the last one stored."""
    text = (tmp / "okrs.yaml").read_text()
    sink = 'sinks:\n  hook: {type: webhook, url: "http://127.0.0.1:9/h"}\nobjectives:'
    text = text.replace("objectives:", sink)
    text = text.replace("start: 50, target: 100}", "start: 50, target: 100, push: [hook]}")
    text = text.replace(
        "        start: 50\n        target: 90",
        "        start: 50\n        target: 90\n        push: [hook]",
    )
    (tmp / "okrs.yaml").write_text(text)
    config = load(tmp / "okrs.yaml")
    defs = from_config(config)
    held = Observation(100, when("2026-11-10"), True, when("2026-11-10"), until=when("2026-11-20"))
    at = when("2026-11-15")
    up = Measurement("uptime", at, "prom", "up_ratio", 50, 0.0, "off_track")
    closure = Measurement("closure", at, "formula", "f", 60, 0.25, "at_risk")
    out = prepare(config, defs, [up, closure], {"uptime": held}).deliveries
    assert [d[1] for d in out] == ["closure"]  # uptime's row under the override: not pushed
    assert json.loads(out[0][4])["objective_progress"] == pytest.approx((1.0 + 0.25) / 2)
    late = Measurement("uptime", when("2026-11-21"), "prom", "up_ratio", 50, 0.0, "off_track")
    (delivery,) = prepare(config, defs, [late], {"uptime": held}).deliveries
    assert json.loads(delivery[4])["objective_progress"] == 0.0  # expired: the value counts
    seen = Observation(50, at, False, at, None, 0.0, "off_track", held_back=True)
    (delivery,) = prepare(config, defs, [late], {"uptime": seen}).deliveries
    assert json.loads(delivery[4])["value"] == 50


def test_the_store_marks_a_value_taken_under_an_expired_override(
    tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After expiry, the latest automated value (taken under the override) is marked held
    back, so the next run pushes its value although it is unchanged."""
    override(capsys, tmp)
    measure(
        tmp, "2026-11-15T00:00:00Z", {"up_ratio": 70, "sum(bugs_closed)": 1, "sum(bugs_opened)": 2}
    )
    store = Store(tmp / "x.db", create=False)
    try:
        period = load(tmp / "okrs.yaml").period
        after = store.observations(["uptime"], when("2026-11-21"), period)["uptime"]
        during = store.observations(["uptime"], when("2026-11-16"), period)["uptime"]
    finally:
        store.close()
    assert after.value == 70 and after.held_back is True and after.until is None
    assert during.value == 90 and during.held_back is False


def test_the_running_daemon_shows_an_override_and_drops_it_at_expiry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A check-in with --until made while the daemon runs: its view (metrics) shows the
    override even after a batch measured under it; past the expiry, that batch's value."""
    write_config(tmp_path)
    clock = [IN_Q4.timestamp()]  # the Daemon takes its clock: inside the config's 2026-Q4
    conn = ScriptedConnector({"up_ratio": 60, "sum(bugs_closed)": 1, "sum(bugs_opened)": 2})
    daemon = Daemon(
        Options(tmp_path / "okrs.yaml", tmp_path / "x.db", listen=None),
        clock=lambda: clock[0],
        factory=factory({"prom": conn}),
    )
    daemon.start()
    try:
        start = datetime.fromtimestamp(clock[0], UTC)
        until = start + timedelta(hours=2)
        with daemon.store_lock:  # the CLI writes through its own connection
            code, _, err = cli(
                capsys, tmp_path, "checkin", "uptime", "95", "--now", start.isoformat(),
                "--until", until.isoformat(), "--author", "ana",
            )  # fmt: skip
        assert code == 0, err
        view = daemon.view()
        assert view is not None and view[1]["uptime"].value == 95
        clock[0] += 120  # past the jitter: every KR is due
        daemon.tick()
        wait(set(daemon.futures), timeout=10)
        assert conn.asked  # measured under the override ...
        assert daemon.obs["uptime"].value == 95  # ... which keeps its value
        view = daemon.view()
        assert view is not None and view[1]["uptime"].value == 95
        clock[0] += 3 * 3600  # past the expiry
        view = daemon.view()
        assert view is not None and view[1]["uptime"].value == 60
        assert view[1]["uptime"].until is None
    finally:
        daemon.shutdown()


def _pushed_daemon(tmp_path: Path) -> tuple[Daemon, list[float], ScriptedConnector]:
    """A daemon on the override config whose `uptime` is pushed to a webhook (nothing
    listens: the deliveries stay in the outbox, which is what these tests read)."""
    write_config(tmp_path)
    path = tmp_path / "okrs.yaml"
    text = path.read_text().replace(
        "objectives:",
        'sinks:\n  hook: {type: webhook, url: "http://127.0.0.1:9/h"}\nobjectives:',
        1,
    )
    path.write_text(
        text.replace("start: 50, target: 100}", "start: 50, target: 100, push: [hook]}")
    )
    clock = [IN_Q4.timestamp()]
    conn = ScriptedConnector({"up_ratio": 60, "sum(bugs_closed)": 1, "sum(bugs_opened)": 2})
    daemon = Daemon(
        Options(path, tmp_path / "x.db", listen=None),
        clock=lambda: clock[0],
        factory=factory({"prom": conn}),
    )
    return daemon, clock, conn


def _batch(daemon: Daemon, clock: list[float], seconds: float) -> None:
    clock[0] += seconds
    daemon.tick()
    wait(set(daemon.futures), timeout=10)


def _pushed(tmp_path: Path) -> list[tuple[float, int]]:
    db = sqlite3.connect(tmp_path / "x.db")
    try:
        return db.execute(
            "SELECT m.value, m.manual FROM deliveries d JOIN measurements m "
            "ON m.id = d.measurement_id WHERE d.kr_id = 'uptime' ORDER BY d.id"
        ).fetchall()
    finally:
        db.close()


def test_the_daemon_keeps_an_override_it_was_never_asked_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No /metrics scrape between the check-in and the batch: the batch itself reads the
    store, so the override holds and the value measured under it is not pushed."""
    daemon, clock, conn = _pushed_daemon(tmp_path)
    daemon.start()
    try:
        start = datetime.fromtimestamp(clock[0], UTC)
        until = (start + timedelta(days=5)).isoformat()
        with daemon.store_lock:
            code, _, err = cli(
                capsys, tmp_path, "checkin", "uptime", "95", "--now", start.isoformat(),
                "--until", until,
            )  # fmt: skip
        assert code == 0, err
        _batch(daemon, clock, 120)
        assert conn.asked and daemon.obs["uptime"].value == 95
    finally:
        daemon.shutdown()
    assert _pushed(tmp_path) == [(95.0, 1)]


def test_after_a_plain_check_in_the_next_automated_value_is_pushed_even_if_as_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """60 measured, 95 checked in by another process (no --until), 60 measured again: the
    check-in was replaced, so the sinks get 60, not stay on 95."""
    daemon, clock, _ = _pushed_daemon(tmp_path)
    daemon.start()
    try:
        _batch(daemon, clock, 120)
        moment = datetime.fromtimestamp(clock[0], UTC).isoformat()
        with daemon.store_lock:
            code, _, err = cli(capsys, tmp_path, "checkin", "uptime", "95", "--now", moment)
        assert code == 0, err
        _batch(daemon, clock, 86400)
    finally:
        daemon.shutdown()
    assert _pushed(tmp_path) == [(60.0, 0), (95.0, 1), (60.0, 0)]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_the_daemon_records_its_configs_git_commit_with_each_run(tmp_path: Path) -> None:
    """As apply and sync --once do: `explain` can name the commit of a daemon's value."""
    daemon, clock, _ = _pushed_daemon(tmp_path)
    config = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    for step in (["init", "-q"], ["add", "okrs.yaml"], ["commit", "-qm", "okrs"]):
        subprocess.run(["git", "-C", str(tmp_path), *config, *step], check=True, timeout=30)
    sha = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    daemon.start()
    try:
        _batch(daemon, clock, 120)
    finally:
        daemon.shutdown()
    db = sqlite3.connect(tmp_path / "x.db")
    kinds = db.execute("SELECT DISTINCT kind, config_commit FROM runs").fetchall()
    db.close()
    assert kinds == [("daemon", sha)]
