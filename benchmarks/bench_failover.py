"""Failover benchmark (run on demand): SIGKILL the leader of two `okrsync run` replicas and
time until the standby's first measurement is in the store.

    .venv/bin/python benchmarks/bench_failover.py [--rounds 3] [--lease 15] [--postgres]

The bound (issue 14): the killed leader's lease runs out (at most --lease after its last
renewal), the standby notices at its next check (a third of --lease), then measures at
its next tick. Two KRs `every: 2s` on a loopback fake Prometheus; SQLite by default,
`--postgres` on a throwaway PostgreSQL started as the test suite starts it.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

import replica_runs
from replica_runs import cluster, measured_each, rows_of
from waiting import wait_until


def failover(workdir: Path, db: str) -> float:
    """One round: seconds from SIGKILL of the leader to the standby's first measurement."""
    with cluster(workdir, db) as replicas:
        first, second = replicas.start("first"), replicas.start("second")
        gauges = wait_until(
            lambda: (g := (first.leader(), second.leader())) in {(1, 0), (0, 1)} and g,
            timeout=60,
            what="one leader",
        )
        leader, standby = (first, second) if gauges == (1, 0) else (second, first)
        wait_until(lambda: measured_each(db, leader, 1), timeout=60, what="leader measures")
        killed = time.time()
        leader.proc.send_signal(signal.SIGKILL)
        leader.proc.wait(10)
        limit = replica_runs.LEASE * 2 + 30
        rows = wait_until(lambda: rows_of(db, standby), timeout=limit, what="standby measures")
        return float(min(r.measured_at for r in rows)) - killed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lease", type=float, default=15.0, help="--lease of the replicas, s")
    parser.add_argument("--postgres", action="store_true", help="on PostgreSQL, not SQLite")
    args = parser.parse_args()
    replica_runs.LEASE = args.lease
    bound = args.lease + args.lease / 3 + replica_runs.EVERY
    with ExitStack() as stack:
        if args.postgres:
            from postgres_server import PASSWORD, start_postgres

            server = stack.enter_context(start_postgres())
            os.environ["OKRSYNC_DB_PASSWORD"] = PASSWORD
        took = []
        for i in range(args.rounds):
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            db = server.database() if args.postgres else str(workdir / "okrsync.db")
            took.append(failover(workdir, db))
            print(f"round {i + 1}: {took[-1]:.2f} s from SIGKILL to the new leader's measurement")
    kind = "postgres" if args.postgres else "sqlite"
    print(
        f"[{kind}] --lease {args.lease:g}s: failover median {statistics.median(took):.2f} s, "
        f"max {max(took):.2f} s (bound: lease + lease/3 + every = {bound:.1f} s)"
    )


if __name__ == "__main__":
    main()
