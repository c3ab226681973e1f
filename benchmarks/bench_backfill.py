"""Backfill benchmark (run on demand, not in CI): 100 Prometheus KRs over 90 days at 1 h.

Writes hourly samples of 100 series `okrsync_bench{kr="i"}` (value i * 10000 + k at hour
k) over 90 days ending at least 3 h before now, turns them into TSDB blocks with promtool
once (timed apart), starts a real Prometheus on 127.0.0.1 holding only them, and
backfills all 100 KRs with `--step 1h` over those 90 days: 100 x 2,161 = 216,100 points.

Each round runs in process the way `okrsync backfill --all` does (chosen, span_of,
prepare, execute with a Measurer) against a fresh store, and reports the wall time
(prepare + execute), requests as the connector counted them and as Prometheus served
them, points written, and the store's share of the time (inside Store.transaction, of
which Store.append_many, plus the reads of `backfilled.existing` in prepare), measured by
wrapping those here; product code is unchanged. The rows are checked: their count and
a few values against the generated function. Then one run of the real CLI as a
subprocess (process start-up and config load included). `--profile` profiles one more
round with cProfile (main thread and every fetch thread, merged; top 25 by tottime).

    .venv/bin/python benchmarks/bench_backfill.py [--krs 100] [--days 90] [--rounds 3]
        [--profile] [--no-cli] [--dir DIR]

Goal (issue 12): the backfill of 216,000 points under 10 s on this machine.
Needs the Debian `prometheus` package (prometheus and promtool). Loopback only.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the real-Prometheus helpers of the tests

import prometheus_server  # noqa: E402
from backfill_timers import StoreTimes, fetch_cpu, profiled_fetches, store_timers  # noqa: E402
from prometheus_server import HistoricalPrometheus, series  # noqa: E402

from okrsync import logs  # noqa: E402
from okrsync.config.loader import Config, load  # noqa: E402
from okrsync.measure.measurer import Measurer  # noqa: E402
from okrsync.service.backfill import chosen, execute, prepare, span_of  # noqa: E402
from okrsync.store.store import Store  # noqa: E402
from okrsync.timefmt import to_text, utcnow  # noqa: E402

HOUR = timedelta(hours=1)
METRIC = "okrsync_bench"
GOAL_S = 10.0


def value(kr: int, k: int) -> float:
    """The sample of KR `kr` at hour k of the span (exact in binary, so compared with ==)."""
    return float(kr * 10_000 + k)


def config_text(
    url: str, krs: int, start: datetime, today: datetime, concurrency: int | None = None
) -> str:
    period_start = (start - timedelta(days=1)).date()
    period_end = (today + timedelta(days=30)).date()
    lines = [
        f"period: {{name: bench, start: {period_start}, end: {period_end}}}",
        f'sources:\n  prom: {{type: prometheus, url: "{url}", timeout: 60'
        + (f", max_concurrency: {concurrency}" if concurrency else "")
        + "}",
        "objectives:",
        "  - id: o",
        "    title: Backfill benchmark",
        "    key_results:",
    ]
    for i in range(krs):
        lines.append(
            f"      - {{id: kr{i}, source: prom, query: '{METRIC}{{kr=\"{i}\"}}', "
            f"target: {value(i, 10_000):g}}}"
        )
    return "\n".join(lines) + "\n"


# --- one round ------------------------------------------------------------------------


@dataclass
class Round:
    wall: float
    prepare: float
    execute: float
    requests_client: dict[str, int]
    requests_served: float
    written: int
    points: int
    store: StoreTimes
    failed: int
    fetch_cpu: float = 0.0
    main_cpu: float = 0.0
    profile: str = ""
    checks: list[str] = field(default_factory=list)


def one_round(
    config: Config,
    server: HistoricalPrometheus,
    db: Path,
    start: datetime,
    end: datetime,
    krs: int,
    *,
    profile: bool = False,
    profile_out: Path | None = None,
) -> Round:
    served_before = server.requests_served()
    store = Store(db)
    thread_profiles: list[cProfile.Profile] = []
    main_profile = cProfile.Profile()
    cpu: list[float] = []
    with store_timers() as times, profiled_fetches(thread_profiles) if profile else fetch_cpu(cpu):
        if profile:
            main_profile.enable()
        began, main_began = time.perf_counter(), time.thread_time()
        now = utcnow()
        measurer = Measurer(config)
        try:
            picked = chosen(config, [], True)
            span = span_of(config, start, end, HOUR.total_seconds(), now)
            bf = prepare(config, store, picked, span, explicit=False, measurer=measurer)
            prepared = time.perf_counter()
            execute(config, store, bf, measurer, now)
            done, main_cpu = time.perf_counter(), time.thread_time() - main_began
            sent = measurer.requests_by_source()
        finally:
            measurer.close()
        if profile:
            main_profile.disable()
    store.close()
    served = server.requests_served() - served_before
    text = ""
    if profile:
        out = io.StringIO()
        stats = pstats.Stats(main_profile, stream=out)
        for prof in thread_profiles:
            stats.add(prof)
        stats.sort_stats("tottime").print_stats(25)
        text = out.getvalue()
        if profile_out is not None:
            stats.dump_stats(profile_out)
    return Round(
        wall=done - began,
        prepare=prepared - began,
        execute=done - prepared,
        requests_client=sent,
        requests_served=served,
        written=sum(r.written for r in bf.reports),
        points=bf.points,
        store=times,
        failed=sum(len(r.failed) for r in bf.reports),
        fetch_cpu=sum(cpu),
        main_cpu=main_cpu,
        profile=text,
        checks=verify(db, start, end, krs),
    )


def verify(db: Path, start: datetime, end: datetime, krs: int) -> list[str]:
    """Problems with the stored rows (none: the count and spot values are right)."""
    hours = int((end - start) / HOUR) + 1
    problems: list[str] = []
    conn = sqlite3.connect(db)
    try:
        count = conn.execute("SELECT count(*) FROM measurements WHERE backfilled = 1").fetchone()[0]
        if count != krs * hours:
            problems.append(f"{count} backfilled rows, expected {krs} x {hours} = {krs * hours}")
        for i, k in [(0, 0), (krs // 2, hours // 3), (krs - 1, hours - 1), (7 % krs, 1234 % hours)]:
            at = to_text(start + k * HOUR)
            got = conn.execute(
                "SELECT value FROM measurements WHERE kr_id = ? AND measured_at = ?",
                [f"kr{i}", at],
            ).fetchall()
            if [g[0] for g in got] != [value(i, k)]:
                problems.append(f"kr{i} at {at}: {got}, expected [{value(i, k)}]")
    finally:
        conn.close()
    return problems


def run_cli(
    cfg: Path, db: Path, start: datetime, end: datetime, server: HistoricalPrometheus
) -> tuple[float, int, dict[str, Any], float]:
    """The real CLI as a subprocess: wall time, exit code, its --json, requests served."""
    env = {**os.environ, "OKRSYNC_CONFIG": str(cfg), "OKRSYNC_DB": str(db)}
    exe = ROOT / ".venv" / "bin" / "okrsync"
    served = server.requests_served()
    began = time.perf_counter()
    done = subprocess.run(
        [
            str(exe),
            "backfill",
            "--all",
            "--step",
            "1h",
            "--from",
            to_text(start),
            "--to",
            to_text(end),
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - began
    try:
        answer: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        answer = {"stdout": done.stdout[-2000:], "stderr": done.stderr[-2000:]}
    return wall, done.returncode, answer, server.requests_served() - served


def build_samples(krs: int, start: datetime, end: datetime) -> Iterator[Any]:
    for i in range(krs):
        yield from series(METRIC, {"kr": str(i)}, start, end, HOUR, partial(value, i))


@contextmanager
def timed_promtool(into: list[float]) -> Iterator[None]:
    """Time the promtool run inside start_prometheus_with_history (its subprocess.run)."""
    original: Callable[..., Any] = subprocess.run

    def run(argv: list[str], *args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return original(argv, *args, **kwargs)
        finally:
            if Path(argv[0]).name == "promtool":
                into.append(time.perf_counter() - began)

    setattr(subprocess, "run", run)  # noqa: B010 (mypy: no assigning to a module's function)
    try:
        yield
    finally:
        setattr(subprocess, "run", original)  # noqa: B010


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--krs", type=int, default=100)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="cProfile one more round")
    ap.add_argument(
        "--concurrency", type=int, help="the source's max_concurrency (default: okrsync's, 4)"
    )
    ap.add_argument("--profile-out", type=Path, help="with --profile: dump the pstats here")
    ap.add_argument("--no-cli", action="store_true", help="skip the subprocess run")
    ap.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    args = ap.parse_args()
    logs.setup("warning", "console")  # as the CLI does: no info line per fetch

    real_now = datetime.now(UTC)
    end = real_now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)
    start = end - timedelta(days=args.days)
    hours = int((end - start) / HOUR) + 1
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        (work / "prom").mkdir()
        began = time.perf_counter()
        samples = list(build_samples(args.krs, start, end))
        generated = time.perf_counter() - began
        promtool: list[float] = []
        boot = time.perf_counter()
        with (
            timed_promtool(promtool),
            prometheus_server.start_prometheus_with_history(work / "prom", samples) as server,
        ):
            ready = time.perf_counter() - boot
            print(
                f"data: {args.krs} series x {hours} hourly samples = {len(samples):,} "
                f"({start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC), generated in "
                f"{generated:.2f} s; promtool create-blocks-from: {promtool[0]:.2f} s; "
                f"Prometheus ready {ready:.2f} s after the OpenMetrics file was started"
            )
            cfg = work / "okrs.yaml"
            cfg.write_text(config_text(server.url, args.krs, start, real_now, args.concurrency))
            config = load(cfg)
            rounds: list[Round] = []
            for n in range(args.rounds):
                r = one_round(config, server, work / f"round{n}.db", start, end, args.krs)
                rounds.append(r)
                share = r.store.transaction / r.wall
                print(
                    f"round {n + 1}: {r.wall:.2f} s (prepare {r.prepare:.2f}, execute "
                    f"{r.execute:.2f}); {r.written:,} of {r.points:,} points written, "
                    f"{r.failed} failed; requests: connector {r.requests_client}, "
                    f"Prometheus served {r.requests_served:g}; store {r.store.transaction:.2f} s "
                    f"in {r.store.transactions} transactions = {share:.0%} (append_many "
                    f"{r.store.append_many:.2f} s; the first (start_run, the period): "
                    f"{r.store.first:.2f} s), existing() reads {r.store.existing:.2f} s; "
                    f"CPU: main thread {r.main_cpu:.2f} s, fetch threads {r.fetch_cpu:.2f} s; "
                    f"check: {'ok' if not r.checks else '; '.join(r.checks)}"
                )
            walls = [r.wall for r in rounds]
            med = statistics.median(walls)
            mid = sorted(rounds, key=lambda r: r.wall)[len(rounds) // 2]
            print(
                f"median of {len(rounds)}: {med:.2f} s (min {min(walls):.2f}, max "
                f"{max(walls):.2f}); store share in the median round "
                f"{mid.store.transaction / mid.wall:.0%} (transactions), "
                f"{mid.store.append_many / mid.wall:.0%} (append_many); "
                f"goal < {GOAL_S:g} s: {'met' if med < GOAL_S else 'NOT met'}"
            )
            if not args.no_cli:
                wall, code, answer, served = run_cli(cfg, work / "cli.db", start, end, server)
                written = sum(k.get("written", 0) for k in answer.get("krs", []))
                print(
                    f"CLI (subprocess, fresh store): {wall:.2f} s wall, exit {code}, "
                    f"{written:,} points written, requests {answer.get('requests')}, "
                    f"Prometheus served {served:g}; check: "
                    + (
                        "ok"
                        if not (p := verify(work / "cli.db", start, end, args.krs))
                        else "; ".join(p)
                    )
                )
                if code != 0 and "stderr" in answer:
                    print(answer["stderr"])
            if args.profile:
                r = one_round(
                    config,
                    server,
                    work / "profile.db",
                    start,
                    end,
                    args.krs,
                    profile=True,
                    profile_out=args.profile_out,
                )
                print(
                    f"profiled round: {r.wall:.2f} s under cProfile (main thread + "
                    f"{sum(r.requests_client.values())} fetch "
                    "requests merged; the main thread's waits for fetches show as acquire/wait)"
                )
                print(r.profile)


if __name__ == "__main__":
    main()
