"""Spine benchmarks (run on demand): --help latency, sync write share, status over 1M rows.

    .venv/bin/python benchmarks/bench_spine.py [--krs 1000] [--rows 1000000] [--postgres]

Goals (issue 2): `okrsync --help` < 0.3 s wall; in `sync --once` of 1,000 KRs against
one local source the store write takes < 5% of the run; `status` over 1,000 KRs with
1,000,000 history rows < 1 s. `--postgres` (issue 14) runs the sync and status ones on a
PostgreSQL store too, a throwaway server started as the test suite starts it (Debian's
postgresql). Only loopback (127.0.0.1) is used.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from okrsync.config.loader import load
from okrsync.measure.measurer import Measurer
from okrsync.measure.plan import select as plan
from okrsync.progress.definitions import from_config
from okrsync.progress.status import assess_all
from okrsync.store.store import Store
from okrsync.timefmt import to_text

NOW = datetime(2026, 11, 15, tzinfo=UTC)


class FakePrometheus(BaseHTTPRequestHandler):
    """Answers /api/v1/query with a one-series vector, shaped like Prometheus 2.42's."""

    def do_GET(self) -> None:
        query = parse_qs(urlparse(self.path).query)["query"][0]
        value = str(sum(map(ord, query)) % 100)
        body = json.dumps(
            {
                "status": "success",
                "data": {
                    "resultType": "vector",
                    "result": [{"metric": {}, "value": [time.time(), value]}],
                },
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def write_config(path: Path, url: str, krs: int) -> None:
    lines = [
        "period: {name: Q4, start: 2026-10-01, end: 2026-12-31}",
        f'sources: {{prom: {{type: prometheus, url: "{url}", max_concurrency: 8}}}}',
        "objectives:",
    ]
    for o in range(krs // 10):
        lines += [f"  - id: o{o}", f"    title: Objective {o}", "    key_results:"]
        lines += [
            f"      - {{id: k{o}-{k}, source: prom, query: 'm{{i=\"{o}-{k}\"}}', target: 100}}"
            for k in range(10)
        ]
    path.write_text("\n".join(lines) + "\n")


def bench_help() -> float:
    best = min(
        _timed(
            lambda: subprocess.run(
                [sys.executable, "-m", "okrsync", "--help"], capture_output=True, check=True
            )
        )
        for _ in range(5)
    )
    return best


def _timed(fn: object) -> float:
    began = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - began


def bench_sync(workdir: Path, krs: int, db: str) -> tuple[float, float]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePrometheus)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cfg = workdir / "okrs.yaml"
    write_config(cfg, f"http://127.0.0.1:{server.server_address[1]}", krs)
    config = load(cfg)
    store = Store(db)
    began = time.perf_counter()
    todo = plan(config)
    measurer = Measurer(config)
    outcomes = measurer.measure(todo, NOW)
    before = store.observations([k.id for k in todo], NOW, config.period)
    rows = assess_all(from_config(config), todo, outcomes, before, NOW)
    measured = time.perf_counter()
    with store.transaction():
        store.sync_config(config, NOW)
        store.record_run("r", "sync", NOW, NOW, config.digest, rows, config.period.name)
    ended = time.perf_counter()
    server.shutdown()
    assert all(r.error is None for r in rows), [r.error for r in rows if r.error][:3]
    return ended - began, (ended - measured) / (ended - began)


def bench_status(workdir: Path, krs: int, rows: int, db: str) -> float:
    cfg = workdir / "okrs.yaml"
    store = Store(db)
    ids = [f"k{o}-{k}" for o in range(krs // 10) for k in range(10)]
    per_kr = rows // len(ids)
    start = NOW - timedelta(days=45)
    rng = random.Random(1)
    with store.transaction():
        store.db.executemany(
            "INSERT INTO measurements (kr_id, run_id, measured_at, value, progress, status, "
            "source, query, manual) VALUES (?, 'r', ?, ?, ?, 'on_track', 'prom', 'q', 0)",
            (
                (kr, to_text(start + timedelta(minutes=5 * i)), v, v / 100)
                for i in range(per_kr)
                for kr in ids
                for v in (rng.uniform(0, 100),)
            ),
        )
    store.close()
    return min(
        _timed(
            lambda: subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "okrsync",
                    "status",
                    "--json",
                    "--config",
                    str(cfg),
                    "--db",
                    db,
                    "--now",
                    "2026-11-15",
                ],
                capture_output=True,
                check=True,
            )
        )
        for _ in range(3)
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--krs", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", action="store_true", help="also on a PostgreSQL store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        work = Path(tmp)
        print(f"okrsync --help: {bench_help():.3f} s wall (goal < 0.3 s)")
        stores: list[tuple[str, Callable[[str], str]]] = [
            ("sqlite", lambda name: str(work / f"{name}.db"))
        ]
        if args.postgres:
            sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
            from postgres_server import PASSWORD, start_postgres

            server = stack.enter_context(start_postgres())
            os.environ["OKRSYNC_DB_PASSWORD"] = PASSWORD  # the status subprocess's too
            stores.append(("postgres", lambda _: server.database()))
        for kind, new in stores:
            total, share = bench_sync(work, args.krs, new("sync"))
            print(
                f"[{kind}] sync of {args.krs} KRs: {total:.2f} s, "
                f"store write {share * 100:.1f}% (goal < 5%)"
            )
            took = bench_status(work, args.krs, args.rows, new("status"))
            print(
                f"[{kind}] status over {args.krs} KRs / {args.rows:,} rows: "
                f"{took:.3f} s wall (goal < 1 s)"
            )


if __name__ == "__main__":
    main()
