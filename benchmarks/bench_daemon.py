"""Daemon benchmark (run on demand, not in CI): RSS, CPU and schedule drift of `okrsync run`.

    .venv/bin/python benchmarks/bench_daemon.py            # 1,000 KRs, every 1m, 5 minutes
    .venv/bin/python benchmarks/bench_daemon.py --quick    # 100 KRs, every 5s, 40 s (smoke)

Goals (issue 4): 1,000 KRs with `every: 1m` over 3 local sources (loopback fakes speaking
Prometheus's query API, in this process) for 5 minutes: steady RSS under 120 MB, CPU under
5% of one core between fetches, no schedule drift over 1 s. The daemon is a real subprocess,
measured from /proc; drift is read back from the store: each KR's measurements should be
exactly one interval apart. Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

RSS_GOAL_MB = 120.0
CPU_GOAL = 5.0
DRIFT_GOAL = 1.0
TICKS = os.sysconf("SC_CLK_TCK")


class Source:
    """A loopback stand-in for Prometheus: every instant query gives 1 at once."""

    def __init__(self) -> None:
        self.requests = 0

        source = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                source.requests += 1
                result = [{"metric": {}, "value": [time.time(), "1"]}]
                body = json.dumps(
                    {"status": "success", "data": {"resultType": "vector", "result": result}}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def write_config(path: Path, sources: list[Source], krs: int, every: str) -> None:
    lines = [
        "period: {name: bench, start: 2026-01-01, end: 2026-12-31}",
        f"defaults: {{every: {every}}}",
        "sources:",
    ]
    lines += [
        f'  s{i}: {{type: prometheus, url: "{s.url}", max_concurrency: 4}}'
        for i, s in enumerate(sources)
    ]
    lines += ["objectives:"]
    per_objective = 50
    for o in range(0, krs, per_objective):
        lines += [f"  - id: o{o}", f"    title: Objective {o}", "    key_results:"]
        for k in range(o, min(krs, o + per_objective)):
            source = f"s{k % len(sources)}"
            lines.append(
                f'      - {{id: kr{k}, source: {source}, query: "m{{k=\\"{k}\\"}}", target: 2}}'
            )
    path.write_text("\n".join(lines) + "\n")


def proc_sample(pid: int) -> tuple[float, float]:
    """(RSS in MB, CPU seconds used so far) of process `pid`."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return rss / 1024, cpu


def drift(db: Path, every: float) -> tuple[float, float, int]:
    """Max and p99 of |gap - interval| between consecutive measurements of each KR."""
    times: dict[str, list[float]] = defaultdict(list)
    with sqlite3.connect(db) as conn:
        for kr_id, at in conn.execute(
            "SELECT kr_id, measured_at FROM measurements ORDER BY kr_id, measured_at"
        ):
            times[kr_id].append(datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp())
        errors = conn.execute("SELECT count(*) FROM measurements WHERE error IS NOT NULL")
        failed = int(errors.fetchone()[0])
    gaps = sorted(abs(b - a - every) for ts in times.values() for a, b in itertools.pairwise(ts))
    if not gaps:
        return float("nan"), float("nan"), failed
    return gaps[-1], gaps[int(len(gaps) * 0.99) - 1 if len(gaps) > 1 else 0], failed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--krs", type=int, default=1000)
    parser.add_argument("--every", type=int, default=60, help="seconds")
    parser.add_argument("--duration", type=float, default=300, help="seconds")
    parser.add_argument("--sources", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="100 KRs, every 5s, 40 s")
    args = parser.parse_args()
    if args.quick:
        args.krs, args.every, args.duration = 100, 5, 40
    sources = [Source() for _ in range(args.sources)]
    work = Path(tempfile.mkdtemp(prefix="bench-daemon-"))
    config, db, log = work / "okrs.yaml", work / "okrsync.db", work / "daemon.log"
    write_config(config, sources, args.krs, f"{args.every}s")
    port = free_port()
    command = [sys.executable, "-m", "okrsync", "run", "--config", str(config), "--db", str(db)]
    command += ["--listen", f"127.0.0.1:{port}"]
    print(
        f"okrsync run: {args.krs} KRs every {args.every}s over {args.sources} sources "
        f"for {args.duration:g}s (logs: {log})"
    )
    with log.open("wb") as err:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
    samples: list[tuple[float, float, float]] = []
    began = time.monotonic()
    try:
        while time.monotonic() - began < args.duration:
            if proc.poll() is not None:
                print(f"daemon exited {proc.returncode}; see {log}")
                return 1
            rss, cpu = proc_sample(proc.pid)
            samples.append((time.monotonic() - began, rss, cpu))
            time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    steady = [s for s in samples if s[0] >= min(args.every * 1.5, args.duration / 2)]
    rss_max = max(s[1] for s in steady)
    per_second = [
        (b[2] - a[2]) / (b[0] - a[0]) * 100 for a, b in itertools.pairwise(steady) if b[0] > a[0]
    ]
    idle = sorted(per_second)[: max(1, len(per_second) // 2)]  # the quieter half: between fetches
    mean_cpu = (steady[-1][2] - steady[0][2]) / (steady[-1][0] - steady[0][0]) * 100
    worst, p99, failed = drift(db, args.every)
    requests = sum(s.requests for s in sources)
    rows = [
        ("steady RSS (max after warm-up)", f"{rss_max:.1f} MB", f"< {RSS_GOAL_MB:g} MB",
         rss_max < RSS_GOAL_MB),
        ("CPU between fetches (median 1 s window)", f"{statistics.median(idle):.2f}%",
         f"< {CPU_GOAL:g}%", statistics.median(idle) < CPU_GOAL),
        ("CPU overall (mean, incl. fetching)", f"{mean_cpu:.2f}%", "-", True),
        ("schedule drift (max |gap - every|)", f"{worst:.3f} s (p99 {p99:.3f} s)",
         f"< {DRIFT_GOAL:g} s", worst < DRIFT_GOAL),
        ("requests served / failed measurements", f"{requests} / {failed}", "0 failed",
         failed == 0),
        ("exit status after SIGTERM", str(code), "0", code == 0),
    ]  # fmt: skip
    for name, value, goal, ok in rows:
        print(f"{'ok  ' if ok else 'MISS'} {name:42} {value:28} goal {goal}")
    return 0 if all(r[3] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
