"""Report benchmark (run on demand, not in CI): 1,000 KRs x 1 year of hourly points.

Builds a store of 1,000 KRs (100 objectives, 10 owners) over a one-year period with one
value per KR per hour (8,760,000 rows, inserted with executemany; kept in --dir and reused
when it is already there), then times `okrsync report --html FILE --md FILE` as a
subprocess (wall) and the build/render steps in process, and prints the sizes.

    python benchmarks/bench_report.py [--dir /tmp/okrsync-bench-report] [--krs 1000]

Goals: under 5 s, HTML under 5 MB.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from okrsync.config.loader import load
from okrsync.progress.definitions import from_config
from okrsync.report import html, markdown
from okrsync.report.model import Filters, build
from okrsync.store.store import Store
from okrsync.timefmt import to_text

START = datetime(2026, 1, 1, tzinfo=UTC)
HOURS = 365 * 24
NOW = START + timedelta(hours=HOURS - 12)  # the last day of the period


def config_text(krs: int) -> str:
    lines = [
        "period: {name: Y2026, start: 2026-01-01, end: 2026-12-31}",
        "defaults: {every: 1h}",
        'sources:\n  prom: {type: prometheus, url: "http://127.0.0.1:9"}',
        "objectives:",
    ]
    for o in range(math.ceil(krs / 10)):
        lines += [
            f"  - id: o{o}",
            f"    title: Objective {o}",
            f"    owner: team{o % 10}",
            "    key_results:",
        ]
        for k in range(o * 10, min(krs, o * 10 + 10)):
            lines.append(f'      - {{id: kr{k}, source: prom, query: "m{k}", target: 100}}')
    return "\n".join(lines) + "\n"


def make_store(folder: Path, krs: int) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    config, db = folder / "okrs.yaml", folder / f"report-{krs}.db"
    config.write_text(config_text(krs))
    if db.exists():
        # A store kept from an older okrsync is migrated once, as the first `sync` would:
        # read-only commands read an older store through a migrated copy in memory, which
        # would time that copy (seconds, and the store's size in RAM), not the report.
        Store(db).close()
        return config, db
    began = time.perf_counter()
    store = Store(db)
    stamps = [to_text(START + timedelta(hours=h)) for h in range(HOURS)]
    sql = (
        "INSERT INTO measurements (kr_id, period, run_id, measured_at, value, progress, "
        "status, source, manual) VALUES (?, 'Y2026', NULL, ?, ?, ?, 'on_track', 'prom', 0)"
    )
    with store.transaction():
        store.sync_config(load(config), START)
    for k in range(krs):
        slope = 100 / HOURS * (0.5 + (k % 7) / 6)
        rows = (
            (f"kr{k}", stamps[h], v, v / 100)
            for h in range(HOURS)
            for v in (round(h * slope + 3 * math.sin(h / 24 + k), 3),)
        )
        with store.transaction():
            store.db.executemany(sql, rows)
    store.close()
    print(f"store: {krs * HOURS:,} rows in {time.perf_counter() - began:.0f} s ({db})")
    return config, db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/okrsync-bench-report"))
    parser.add_argument("--krs", type=int, default=1000)
    args = parser.parse_args()
    config, db = make_store(args.dir, args.krs)
    page, text = args.dir / "report.html", args.dir / "report.md"
    command = [sys.executable, "-m", "okrsync", "report", "--config", str(config)]
    command += ["--db", str(db), "--html", str(page), "--md", str(text), "--now", NOW.isoformat()]
    walls = []
    for _ in range(3):
        began = time.perf_counter()
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
        )
        walls.append(time.perf_counter() - began)
        if done.returncode != 0:
            sys.exit(f"report failed ({done.returncode}): {done.stderr}")
    store = Store(db, create=False)
    try:
        began = time.perf_counter()
        report = build(from_config(load(config)), store, NOW, Filters(), pinned=True)
        built = time.perf_counter() - began
    finally:
        store.close()
    began = time.perf_counter()
    html.render(report)
    as_html = time.perf_counter() - began
    began = time.perf_counter()
    markdown.render(report)
    as_md = time.perf_counter() - began
    print(f"report of {args.krs:,} KRs x {HOURS:,} hourly points (subprocess wall, best of 3):")
    print(f"  wall {min(walls):.2f} s (runs: {', '.join(f'{w:.2f}' for w in walls)}); goal < 5 s")
    print(f"  in process: build {built:.2f} s, HTML {as_html:.2f} s, Markdown {as_md:.2f} s")
    print(
        f"  HTML {page.stat().st_size / 1e6:.2f} MB (goal < 5 MB), Markdown "
        f"{text.stat().st_size / 1e6:.2f} MB"
    )


if __name__ == "__main__":
    main()
