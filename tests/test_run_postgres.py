"""`okrsync run` on a PostgreSQL store as it starts: refused credentials are exit 3 at once;
an unreachable server is waited for with backoff while /readyz answers 503."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from daemon_configs import config_text
from postgres_server import PASSWORD, PostgresServer
from prometheus_server import free_port
from waiting import wait_until


def start_run(tmp_path: Path, db: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    config = tmp_path / "okrs.yaml"
    config.write_text(config_text("http://127.0.0.1:9", "{id: k, source: manual, target: 3}"))
    port = free_port()
    argv = [sys.executable, "-m", "okrsync", "run", "--config", str(config), "--db", db]
    argv += ["--listen", f"127.0.0.1:{port}", "--log-format", "json", "--watch", "off"]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    return proc, port


def readyz(port: int) -> tuple[int, dict[str, object]] | None:
    try:
        answer = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
    except requests.ConnectionError:
        return None
    return answer.status_code, answer.json()


@contextmanager
def forwarder(listen: int, to: int) -> Iterator[None]:
    """A loopback TCP forwarder from port `listen` to `to`: the database "comes back"."""
    server = socket.create_server(("127.0.0.1", listen))
    server.settimeout(0.2)
    done = threading.Event()

    def pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                s.close()

    def accept() -> None:
        while not done.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            upstream = socket.create_connection(("127.0.0.1", to))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pump, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=5)
        server.close()


def env_with(password: str) -> dict[str, str]:
    import os

    return {**os.environ, "OKRSYNC_DB_PASSWORD": password}


def test_refused_credentials_end_the_start_with_exit_3(tmp_path: Path, postgres_url: str) -> None:
    wrong = "not-the-Password-42"
    proc, _ = start_run(tmp_path, postgres_url, env_with(wrong))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    last = err.strip().splitlines()[-1]
    assert "password authentication failed" in last and "port" in last and "database" in last
    assert wrong not in out + err and PASSWORD not in out + err


def test_a_database_that_does_not_exist_ends_the_start_with_exit_3(
    tmp_path: Path, postgres_url: str
) -> None:
    """Misconfigured, not unreachable: no waiting (it would never come)."""
    url = postgres_url.rsplit("/", 1)[0] + "/no_such_db"
    proc, _ = start_run(tmp_path, url, env_with(PASSWORD))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert 'database "no_such_db" does not exist' in err.strip().splitlines()[-1]


def test_an_unreachable_store_is_waited_for_while_readyz_says_503(
    tmp_path: Path, postgres_server: PostgresServer, postgres_url: str
) -> None:
    """Not ready (503, with the reason) while nothing answers at the URL's port; ready once
    the database is reachable there; SIGTERM then stops it cleanly."""
    gone = free_port()
    url = postgres_url.replace(f":{postgres_server.port}/", f":{gone}/")
    proc, port = start_run(tmp_path, url, env_with(PASSWORD))
    try:
        waiting = wait_until(
            lambda: (r := readyz(port)) is not None and r[0] == 503 and r[1].get("store_error"),
            what="/readyz 503 with the reason",
        )
        assert "cannot connect" in str(waiting) and f"port {gone}" in str(waiting)
        assert proc.poll() is None
        metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert metrics.status_code == 200 and "\nokrsync_leader 0.0\n" in metrics.text
        report = requests.get(f"http://127.0.0.1:{port}/report", timeout=10)
        assert report.status_code == 503 and PASSWORD not in report.text
        with forwarder(gone, postgres_server.port):
            wait_until(
                lambda: (r := readyz(port)) is not None and r[0] == 200,
                timeout=60,
                what="/readyz 200 once the database answers",
            )
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        events = [json.loads(line)["event"] for line in err.splitlines() if line.startswith("{")]
        assert "store_unreachable" in events and "serving" in events
        assert PASSWORD not in out + err
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_sigterm_while_waiting_for_the_store_exits_cleanly(
    tmp_path: Path, postgres_url: str
) -> None:
    url = f"postgresql://okrsync@127.0.0.1:{free_port()}/x"
    proc, port = start_run(tmp_path, url, env_with(PASSWORD))
    try:
        wait_until(lambda: (r := readyz(port)) is not None and r[0] == 503, what="/readyz 503")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        proc.kill()
        proc.wait(timeout=10)
