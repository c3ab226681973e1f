"""SLO benchmark (run on demand, not in CI): 200 SLO KRs measured in one tick.

    .venv/bin/python benchmarks/bench_slo.py [--latency 0.05] [--concurrency 16]
        [--rounds 3] [--no-cli] [--profile]

Goals (issue 13), against a loopback fake Prometheus (127.0.0.1, slo_fake.py) answering
/api/v1/query in Prometheus 2.42's vector shape after 50 ms: 200 SLO KRs, each 10 queries
(good and total over the SLO window, then over the 4 windows of the 2 default burn pairs),
make one request per distinct query: 180 availability SLOs of their own job (half over the
period, half over 28d) and 20 latency SLOs of one job (one bucket each, all sharing its
`total`), so 1,905 distinct queries, not 2,000. Wall time within 1.5x of the ideal,
ceil(distinct queries / max_concurrency) x latency; every KR gets its SLI, from the counts
the fake sent. Each round is `run_once` in process with a fresh Measurer and SQLite store;
the median of the rounds is reported, then one `okrsync sync --once` as a subprocess
(start-up and config load included). `--profile` runs one more round under cProfile (the
main thread and every fetch, merged; top 25 by tottime). Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from slo_fake import FakePrometheus, serve, value_text

from okrsync import logs
from okrsync.config.loader import Config, load
from okrsync.measure import slo_queries
from okrsync.measure.measurer import Measurer
from okrsync.measure.plan import Fetch, plan, select
from okrsync.service.once import RunResult, run_once
from okrsync.store.store import Store

SHARED = 20
"""Latency SLOs of one job (`checkout`), all counting over its one `total` query."""


def write_config(path: Path, url: str, concurrency: int, krs: int, today: datetime) -> None:
    """`krs` SLO KRs, 10 per objective; the last SHARED are latency SLOs of one job."""
    start, end = (today + timedelta(days=d) for d in (-60, 30))
    lines = [
        f"period: {{name: bench, start: {start:%Y-%m-%d}, end: {end:%Y-%m-%d}}}",
        f"sources: {{prom: {{type: prometheus, url: '{url}', max_concurrency: {concurrency}}}}}",
        "objectives:",
    ]
    for k in range(krs):
        if k % 10 == 0:
            lines += [f"  - id: o{k // 10}", f"    title: Services {k // 10}", "    key_results:"]
        if k < krs - SHARED:
            sel = f'job="svc-{k:03d}"'
            good = f'sum(increase(http_requests_total{{{sel},code!~"5.."}}[{{window}}]))'
            total = f"sum(increase(http_requests_total{{{sel}}}[{{window}}]))"
            kr_id, objective, window = (
                f"svc-{k:03d}-availability",
                99.9,
                "28d" if k % 2 else "period",
            )
        else:
            le = f"{0.05 * (k - krs + SHARED + 1):.2f}"
            bucket = f'http_request_duration_seconds_bucket{{job="checkout",le="{le}"}}'
            good = f"sum(increase({bucket}[{{window}}]))"
            total = 'sum(increase(http_request_duration_seconds_count{job="checkout"}[{window}]))'
            kr_id, objective, window = f"checkout-latency-{le}s", 90, "period"
        lines += [
            f"      - id: {kr_id}",
            "        source: prom",
            f"        slo: {{good: '{good}', total: '{total}', objective: {objective}, "
            f"window: {window}}}",
        ]
    path.write_text("\n".join(lines) + "\n")


def wrong_values(config: Config, result: RunResult, now: datetime) -> list[str]:
    """KRs whose value is not 100 x good / total of the fake's counts, or that failed."""
    wrong = []
    by_id = {m.kr_id: m for m in result.measurements}
    for kr in select(config):
        m = by_id.get(kr.id)
        asked = {
            n: float(value_text(q.query_fields()["query"]))
            for n, q in slo_queries.measures(config, kr, now)
        }
        if m is None or m.failed or m.inputs != asked or m.value is None:
            wrong.append(f"{kr.id}: {m.error if m else 'not measured'}")
        elif not math.isclose(m.value, 100 * asked["good"] / asked["total"], rel_tol=1e-12):
            wrong.append(f"{kr.id}: SLI {m.value}")
    return wrong


@contextmanager
def profiled(profiles: list[cProfile.Profile]) -> Iterator[None]:
    """Profile every fetch in its own thread too (cProfile sees only the calling thread)."""
    original = Measurer._run

    def run(self: Measurer, fetch: Fetch) -> None:
        prof = cProfile.Profile()
        profiles.append(prof)
        prof.runcall(original, self, fetch)

    Measurer._run = run  # type: ignore[method-assign]
    try:
        yield
    finally:
        Measurer._run = original  # type: ignore[method-assign]


def tick(config: Config, db: Path, now: datetime) -> tuple[float, RunResult]:
    """One `run_once` with a fresh Measurer and store: (wall, result)."""
    store, measurer = Store(db), Measurer(config)
    began = time.perf_counter()
    result = run_once(config, store, now, measurer=measurer)
    took = time.perf_counter() - began
    measurer.close()
    store.close()
    return took, result


def profiled_tick(config: Config, db: Path, now: datetime) -> tuple[float, str]:
    """`tick` under cProfile: (wall, the merged top 25 by tottime)."""
    profiles = [cProfile.Profile()]
    with profiled(profiles):
        took, _ = profiles[0].runcall(tick, config, db, now)
    out = io.StringIO()
    stats = pstats.Stats(profiles[0], stream=out)
    for prof in profiles[1:]:
        stats.add(prof)
    stats.sort_stats("tottime").print_stats(25)
    return took, out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--krs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-cli", action="store_true", help="skip the `sync --once` run")
    parser.add_argument("--profile", action="store_true", help="cProfile one more round")
    args = parser.parse_args()
    logs.setup("warning")  # as `okrsync sync` does by default: no log line per fetch
    server, url = serve(args.latency)
    missed: list[str] = []

    def goal(ok: bool, text: str) -> None:
        print(("  ok     " if ok else "  MISSED ") + text)
        missed.extend([] if ok else [text])

    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_config(work / "okrs.yaml", url, args.concurrency, args.krs, now)
        config = load(work / "okrs.yaml")
        krs = select(config)
        distinct = len(plan(config, krs, now).fetches)
        asked = sum(len(slo_queries.measures(config, kr, now)) for kr in krs)
        ideal = math.ceil(distinct / args.concurrency) * args.latency
        print(
            f"{len(krs)} SLO KRs, {asked} queries, {distinct} distinct; latency "
            f"{args.latency * 1000:g} ms, max_concurrency {args.concurrency}: "
            f"ideal {ideal:.3f} s"
        )
        walls = []
        for r in range(1, args.rounds + 1):
            FakePrometheus.reset()
            took, result = tick(config, work / f"round{r}.db", now)
            walls.append(took)
            served, fake = sum(FakePrometheus.queries.values()), FakePrometheus
            print(
                f"round {r}: wall {took:.3f} s = {took / ideal:.2f} x ideal; requests "
                f"{result.requests.get('prom', 0)} (fake served {served}, "
                f"{len(fake.queries)} distinct, {fake.connections} connections, "
                f"{fake.unexpected} unexpected), planned {result.queries.get('prom', 0)}"
            )
            wrong = wrong_values(config, result, now)
            goal(
                not wrong,
                f"every KR has the SLI of the fake's counts ({len(wrong)} not) {wrong[:2]}",
            )
            goal(
                served == distinct == result.requests.get("prom") == len(fake.queries),
                f"requests {served} = distinct queries {distinct}, each served once",
            )
        median = statistics.median(walls)
        goal(
            median <= 1.5 * ideal,
            f"median wall {median:.3f} s = {median / ideal:.2f} x ideal {ideal:.3f} s (<= 1.5x)",
        )
        if not args.no_cli:
            FakePrometheus.reset()
            cmd = [sys.executable, "-m", "okrsync", "sync", "--once"]
            cmd += ["--config", str(work / "okrs.yaml"), "--db", str(work / "cli.db")]
            began = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True)
            took = time.perf_counter() - began
            served = sum(FakePrometheus.queries.values())
            print(
                f"okrsync sync --once: exit {done.returncode}, wall {took:.3f} s = "
                f"{took / ideal:.2f} x ideal (process start-up and config load included), "
                f"fake served {served} ({len(FakePrometheus.queries)} distinct)"
            )
            goal(done.returncode == 0, f"sync --once exit 0 {done.stderr[-300:]!r}")
            goal(served == distinct, f"sync --once requests {served} = distinct {distinct}")
        if args.profile:
            FakePrometheus.reset()
            took, text = profiled_tick(config, work / "profile.db", now)
            print(f"profiled round: wall {took:.3f} s (cProfile slows it)\n{text}")
    server.shutdown()
    print("all goals met" if not missed else f"{len(missed)} goal(s) missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
