"""`okrsync run` as a real subprocess against a real Prometheus: reloads, signals, secrets."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from daemon_configs import config_text
from prometheus_server import PrometheusServer, free_port, wait_for_value
from waiting import wait_until

TOKEN = "tok-5f1e-SECRET-9a7c"


KR_A = '{id: a, source: prom, query: "sum(okrsync_daemon_a)", target: 100}'
KR_B = '{id: b, source: prom, query: "sum(okrsync_daemon_b)", target: 10}'


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    port: int
    config: Path
    db: Path
    log: Path

    def get(self, path: str) -> requests.Response:
        return requests.get(f"http://127.0.0.1:{self.port}{path}", timeout=5)

    def metric(self, name: str, **labels: str) -> float | None:
        """The value of one sample on /metrics, or None while it is absent."""
        want = ",".join(f'{k}="{v}"' for k, v in labels.items())
        prefix = f"{name}{{{want}}} " if labels else f"{name} "
        for line in self.get("/metrics").text.splitlines():
            if line.startswith(prefix):
                return float(line.split()[-1])
        return None

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 10) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def rows(self, kr_id: str) -> int:
        with sqlite3.connect(self.db) as conn:
            return int(
                conn.execute(
                    "SELECT count(*) FROM measurements WHERE kr_id = ?", [kr_id]
                ).fetchone()[0]
            )


def okrsync(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "okrsync", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Start `okrsync run` on a config text; every daemon started is stopped at the end."""
    started: list[Daemon] = []

    def run(
        text: str, *flags: str, env: dict[str, str] | None = None, level: str = "info"
    ) -> Daemon:
        config = tmp_path / "okrs.yaml"
        config.write_text(text)
        port = free_port()
        log = tmp_path / f"daemon-{len(started)}.log"
        command = [sys.executable, "-m", "okrsync", "--log-level", level, "run"]
        command += ["--config", str(config), "--db", str(tmp_path / "okrsync.db")]
        command += ["--listen", f"127.0.0.1:{port}", *flags]
        with log.open("wb") as err:
            proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=env)
        daemon = Daemon(proc, port, config, tmp_path / "okrsync.db", log)
        started.append(daemon)
        wait_until(lambda: _ready(daemon), what=f"/readyz\n{daemon.stderr()}")
        return daemon

    yield run
    for daemon in started:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()


def _ready(daemon: Daemon) -> bool:
    if daemon.proc.poll() is not None:
        raise AssertionError(f"daemon exited {daemon.proc.returncode}:\n{daemon.stderr()}")
    try:
        return daemon.get("/readyz").status_code == 200
    except requests.ConnectionError:
        return False


def replace(path: Path, text: str) -> None:
    """Write a new config the way editors and ConfigMaps do: complete, then renamed."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.rename(path)


@pytest.fixture
def prom(prometheus_server: PrometheusServer) -> PrometheusServer:
    prometheus_server.exporter.set("okrsync_daemon_a", 40)
    prometheus_server.exporter.set("okrsync_daemon_b", 7)
    wait_for_value(prometheus_server.url, "sum(okrsync_daemon_b)", 7)
    return prometheus_server


def test_config_edit_adds_and_retires_krs_while_running(
    start: Callable[..., Daemon], prom: PrometheusServer
) -> None:
    """A new KR in the edited file is measured and shown; a removed one keeps its history."""
    daemon = start(config_text(prom.url, KR_A))
    wait_until(lambda: daemon.metric("okrsync_kr_value", kr="a", objective="o") == 40, what="a")
    first_hash = daemon.get("/healthz").json()["config"]["hash"]
    replace(daemon.config, config_text(prom.url, KR_A, KR_B))
    wait_until(lambda: daemon.metric("okrsync_kr_value", kr="b", objective="o") == 7, what="b")
    status = okrsync("status", "--json", "--config", str(daemon.config), "--db", str(daemon.db))
    krs = {k["id"]: k for k in json.loads(status.stdout)["objectives"][0]["key_results"]}
    assert krs["b"]["value"] == 7 and krs["a"]["value"] == 40
    replace(daemon.config, config_text(prom.url, KR_B))
    wait_until(lambda: daemon.metric("okrsync_kr_value", kr="a", objective="o") is None, what="-a")
    health = daemon.get("/healthz").json()
    assert health["config"]["hash"] != first_hash and health["config"]["last_reload_successful"]
    assert daemon.metric("okrsync_config_info", hash=health["config"]["hash"]) == 1
    assert daemon.stop() == 0
    history = okrsync("history", "a", "--json", "--db", str(daemon.db))
    assert history.returncode == 0 and json.loads(history.stdout)[0]["value"] == 40
    with sqlite3.connect(daemon.db) as conn:
        retired = conn.execute("SELECT retired_at FROM key_results WHERE id = 'a'").fetchone()[0]
    assert retired is not None


def test_invalid_config_is_rejected_and_the_old_one_keeps_running(
    start: Callable[..., Daemon], prom: PrometheusServer
) -> None:
    """A broken edit is logged with file:line, shown in /healthz and metrics; KRs go on."""
    daemon = start(config_text(prom.url, KR_A))
    wait_until(lambda: daemon.rows("a") >= 1, what="first row")
    broken = config_text(prom.url, KR_A.replace("target", "taget"))
    replace(daemon.config, broken)
    health = wait_until(
        lambda: (h := daemon.get("/healthz").json())["config"]["errors"] and h, what="rejection"
    )
    problem = f"{daemon.config}:9: objectives[0].key_results[0].taget: unknown key 'taget'"
    assert any(e.startswith(problem) for e in health["config"]["errors"])
    assert health["config"]["last_reload_successful"] is False
    assert daemon.get("/healthz").status_code == 200 and daemon.get("/readyz").status_code == 200
    assert daemon.metric("okrsync_config_last_reload_successful") == 0
    assert problem in daemon.stderr()
    measured = daemon.rows("a")
    wait_until(lambda: daemon.rows("a") > measured, what="still measuring")
    replace(daemon.config, config_text(prom.url, KR_A, KR_B))
    daemon.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: daemon.metric("okrsync_config_last_reload_successful") == 1, what="fixed")
    assert daemon.stop() == 0


class SlowPrometheus:
    """A loopback stand-in for Prometheus that answers after `delay` seconds."""

    def __init__(self, delay: float, error: bool = False) -> None:
        self.delay = delay
        self.asked = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.asked.set()
                time.sleep(fake.delay)
                if error:  # a server that echoes our credentials back in its error
                    auth = self.headers.get("Authorization", "")
                    body: dict[str, object] = {
                        "status": "error",
                        "errorType": "bad_data",
                        "error": f"bad {auth}",
                    }
                    code = 400
                else:
                    result = [{"metric": {}, "value": [time.time(), "3"]}]
                    body = {"status": "success", "data": {"resultType": "vector", "result": result}}
                    code = 200
                data = json.dumps(body).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the daemon gave up on us: fine
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def slow() -> Iterator[Callable[..., SlowPrometheus]]:
    made: list[SlowPrometheus] = []

    def make(delay: float, error: bool = False) -> SlowPrometheus:
        made.append(SlowPrometheus(delay, error))
        return made[-1]

    yield make
    for fake in made:
        fake.server.shutdown()


@pytest.mark.parametrize(("delay", "grace", "stored"), [(30.0, 0.5, 0), (1.0, 8.0, 1)])
def test_sigterm_mid_fetch_exits_0_with_a_consistent_store(
    start: Callable[..., Daemon],
    slow: Callable[..., SlowPrometheus],
    delay: float,
    grace: float,
    stored: int,
) -> None:
    """SIGTERM during a fetch finishes it within --grace or abandons it; exit 0, store intact."""
    fake = slow(delay)
    daemon = start(config_text(fake.url, KR_A), "--grace", str(grace))
    assert fake.asked.wait(10)
    began = time.monotonic()
    assert daemon.stop(timeout=grace + 5) == 0
    assert time.monotonic() - began < grace + 3
    with sqlite3.connect(daemon.db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        unfinished = conn.execute("SELECT count(*) FROM runs WHERE finished_at IS NULL")
        assert unfinished.fetchone()[0] == 0
        values = conn.execute("SELECT value FROM measurements WHERE kr_id = 'a'").fetchall()
    assert values == [(3.0,)] * stored


def test_a_token_in_the_environment_never_appears_in_logs(
    start: Callable[..., Daemon], slow: Callable[..., SlowPrometheus]
) -> None:
    """Even when a server echoes the credential back, every log line shows *** instead."""
    fake = slow(0, error=True)
    env = {**os.environ, "OKRSYNC_PROM_TOKEN": TOKEN}
    daemon = start(config_text(fake.url, KR_A), env=env, level="debug")
    wait_until(lambda: '"event": "fetch"' in daemon.stderr(), what="a fetch log line")
    assert daemon.stop() == 0
    text = daemon.stderr()
    assert TOKEN not in text
    assert "Bearer ***" in text
    events = [json.loads(line) for line in text.splitlines()]  # JSON lines without a TTY
    fetch = next(e for e in events if e["event"] == "fetch")
    assert fetch["source"] == "prom" and fetch["outcome"] == "error" and "duration_s" in fetch


def test_restart_schedules_from_the_store_and_never_double_writes(
    start: Callable[..., Daemon], prom: PrometheusServer
) -> None:
    """After a restart a KR measured within its interval is not measured again, yet served."""
    text = config_text(prom.url, KR_A, every="20s")  # first run within 2s of jitter
    daemon = start(text)
    wait_until(lambda: daemon.rows("a") == 1, what="first measurement")
    assert daemon.stop() == 0
    again = start(text)
    assert again.metric("okrsync_kr_value", kr="a", objective="o") == 40  # from the store
    assert again.metric("okrsync_kr_last_success_timestamp_seconds", kr="a", objective="o")
    time.sleep(1.0)  # a tick or two: nothing may be due
    assert again.rows("a") == 1
    assert again.stop() == 0


def test_run_once_is_sync_once(tmp_path: Path, prom: PrometheusServer) -> None:
    """`run --once` prints, stores and exits exactly as `sync --once` does."""
    config = tmp_path / "okrs.yaml"
    bad = '{id: c, source: prom, query: "sum(okrsync_daemon_missing)", target: 1}'
    config.write_text(config_text(prom.url, KR_A, bad))
    outs = []
    for command in ("run", "sync"):
        db = tmp_path / f"{command}.db"
        done = okrsync(command, "--once", "--config", str(config), "--db", str(db))
        outs.append((done.returncode, done.stdout.replace(str(db), "DB")))
    assert outs[0] == outs[1]
    assert outs[0][0] == 1 and "✔ a = 40" in outs[0][1] and "✖ c:" in outs[0][1]
