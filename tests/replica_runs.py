"""Several `okrsync run` subprocesses on one store (a SQLite file or a PostgreSQL database),
for the replica tests: a loopback fake Prometheus, the replicas' JSON logs and /metrics,
and the store's lease and rows (read through okrsync's own store, on either backend)."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from daemon_configs import config_text
from prometheus_server import free_port
from waiting import wait_until

from okrsync.store.store import Store

LEASE = 3.0  # --lease of every replica, seconds
EVERY = 2.0  # `every` of every KR, seconds
SLACK = 2.0  # for a loaded CI machine
KRS = ("a", "b")


class FakeSource:
    """A loopback Prometheus answering every instant query with 1; `delay` holds answers,
    `in_flight` counts the queries being answered."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.in_flight = 0
        self.queries = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        source = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/api/v1/query":
                    self.send_error(404)
                    return
                with source._lock:
                    source.in_flight += 1
                    source.queries += 1
                try:
                    time.sleep(source.delay)
                    result = [{"metric": {}, "value": [time.time(), "1"]}]
                    data = {"resultType": "vector", "result": result}
                    body = json.dumps({"status": "success", "data": data}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                finally:
                    with source._lock:
                        source.in_flight -= 1

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def replica_config(url: str) -> str:
    """Two KRs on the fake source, every EVERY seconds, in a period around the real today."""
    krs = [f'{{id: {k}, source: prom, query: "sum(up_{k})", target: 2}}' for k in KRS]
    return config_text(url, *krs, every=f"{EVERY:g}s")


@dataclass
class Replica:
    """One `okrsync run` subprocess and its stderr log (JSON lines: no TTY)."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def get(self, path: str) -> requests.Response:
        return requests.get(f"http://127.0.0.1:{self.port}{path}", timeout=5)

    def metric(self, name: str, labels: str = "") -> float | None:
        """One sample of /metrics (`labels` as written there, e.g. `kr="a",objective="o"`)."""
        prefix = f"{name}{{{labels}}} " if labels else f"{name} "
        for line in self.get("/metrics").text.splitlines():
            if line.startswith(prefix):
                return float(line.split()[-1])
        return None

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The log events (all, or those named `name`), in order."""
        found = []
        for line in self.stderr().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and (name is None or event.get("event") == name):
                found.append(event)
        return found

    def run_ids(self) -> set[str]:
        """The runs this replica wrote (it logs `batch` after each committed write)."""
        return {str(e["run_id"]) for e in self.events("batch")}

    def holder(self) -> str | None:
        """Its lease holder id, from its last `leader_acquired`."""
        acquired = self.events("leader_acquired")
        return str(acquired[-1]["holder"]) if acquired else None

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited {self.proc.returncode}:\n{self.stderr()}")
        try:
            return self.get("/readyz").status_code == 200
        except requests.ConnectionError:
            return False

    def leader(self) -> float | None:
        """Its okrsync_leader gauge; None while /metrics does not answer (stopped)."""
        try:
            return self.metric("okrsync_leader")
        except requests.RequestException:
            return None


class Cluster:
    """Replicas of one config and store under `tmp_path`, on one fake source."""

    def __init__(self, tmp_path: Path, db: str) -> None:
        self.tmp_path = tmp_path
        self.source = FakeSource()
        self.config = tmp_path / "okrs.yaml"
        self.config.write_text(replica_config(self.source.url))
        self.db = db
        self.started: list[Replica] = []

    def start(self, name: str) -> Replica:
        """Start `okrsync run` (lease LEASE, no config watching) and wait for its /readyz."""
        port = free_port()
        log = self.tmp_path / f"{name}.log"
        command = [sys.executable, "-m", "okrsync", "run", "--config", str(self.config)]
        command += ["--db", self.db, "--listen", f"127.0.0.1:{port}"]
        command += ["--lease", f"{LEASE:g}s", "--watch", "off"]
        with log.open("wb") as err:
            proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
            )
        replica = Replica(name, proc, port, log)
        self.started.append(replica)
        wait_until(replica.ready, what=f"{name} /readyz")
        return replica

    def close(self) -> None:
        """Kill every replica still running (a stopped one is continued first)."""
        for replica in self.started:
            if replica.proc.poll() is None:
                replica.proc.send_signal(signal.SIGCONT)
                replica.proc.kill()
            replica.proc.wait(timeout=10)
        self.source.close()


@contextmanager
def cluster(tmp_path: Path, db: str) -> Iterator[Cluster]:
    """A Cluster whose replicas are all killed at the end, whatever the test did."""
    replicas = Cluster(tmp_path, db)
    try:
        yield replicas
    finally:
        replicas.close()


@dataclass(frozen=True)
class Lease:
    holder: str
    epoch: int
    expires_at: float
    acquired_at: float


def select(db: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows of one query on the store, read the way `okrsync status` reads it."""
    store = Store(db, create=False)
    try:
        return [tuple(r) for r in store.db.execute(sql).fetchall()]
    finally:
        store.close()


def lease_row(db: str) -> Lease | None:
    rows = select(db, "SELECT holder, epoch, expires_at, acquired_at FROM leases")
    return None if not rows else Lease(str(rows[0][0]), int(rows[0][1]), rows[0][2], rows[0][3])


@dataclass(frozen=True)
class Row:
    kr_id: str
    measured_at: float
    run_id: str


def measurements(db: str) -> list[Row]:
    """The measurements, oldest first, with measured_at in unix seconds."""
    rows = select(db, "SELECT kr_id, measured_at, run_id FROM measurements ORDER BY measured_at")
    return [Row(str(k), stamp(m), str(r)) for k, m, r in rows]


def runs(db: str) -> dict[str, tuple[float, float]]:
    """Each run's (started_at, finished_at) in unix seconds, by run id."""
    rows = select(db, "SELECT id, started_at, finished_at FROM runs")
    return {str(i): (stamp(s), stamp(f)) for i, s, f in rows}


def stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def rows_of(db: str, replica: Replica) -> list[Row]:
    ids = replica.run_ids()
    return [r for r in measurements(db) if r.run_id in ids]


def measured_each(db: str, replica: Replica, times: int) -> bool:
    """Whether `replica` has written at least `times` measurements of every KR."""
    rows = rows_of(db, replica)
    return all(sum(r.kr_id == kr for r in rows) >= times for kr in KRS)


def exactly_once(rows: list[Row], max_gap: float) -> None:
    """Per KR: no two measurements much closer than `every` (one due time measured twice),
    none farther apart than `max_gap` (a due time skipped)."""
    for kr in KRS:
        times = [r.measured_at for r in rows if r.kr_id == kr]
        assert len(times) >= 2, f"{kr}: {times}"
        gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 0.5 * EVERY, f"{kr} measured twice for one due time: gaps {gaps}"
        assert max(gaps) <= max_gap, f"{kr} skipped a due time: gaps {gaps} > {max_gap}"
