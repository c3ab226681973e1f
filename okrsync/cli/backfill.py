"""`okrsync backfill`: parse the span, plan, show or run it, and report per KR."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from okrsync.cli import moment
from okrsync.cli.exits import EXIT_FAILED, EXIT_OK
from okrsync.cli.settings import Settings
from okrsync.config.duration import format_duration, parse_duration
from okrsync.config.loader import Config
from okrsync.errors import UsageError
from okrsync.measure.measurer import Measurer
from okrsync.service.backfill import Backfill, KRReport, chosen, execute, prepare, span_of
from okrsync.store.store import Store
from okrsync.timefmt import parse_instant, to_text


def _instant(flag: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _step(text: str) -> float:
    try:
        return parse_duration(text, minimum=1)
    except ValueError as exc:
        raise UsageError(f"--step: {exc}") from None


def backfill(args: Any, settings: Settings, config: Config) -> int:
    from okrsync.review.gitinfo import config_commit

    now = moment.now_of(args)
    krs = chosen(config, args.kr_ids, args.all)
    span = span_of(
        config, _instant("--from", args.start), _instant("--to", args.end), _step(args.step), now
    )
    measurer = Measurer(config)
    try:
        reader = Store(settings.db, create=False)  # a refused backfill creates no store
        try:
            bf = prepare(
                config,
                reader,
                krs,
                span,
                explicit=bool(args.kr_ids),
                replace=args.replace,
                measurer=measurer,
            )
        finally:
            reader.close()
        if args.dry_run:
            _print(args, bf, None, dry_run=True)
            return EXIT_OK
        store = Store(settings.db)
        stop = threading.Event()
        with _stop_on_signals(stop):  # until the end: a late second signal leaves at once
            try:
                before = measurer.requests_by_source()
                with _bar(args.json) as bar:
                    run_id = execute(
                        config,
                        store,
                        bf,
                        measurer,
                        now,
                        stop=stop,
                        progress=bar,
                        commit=config_commit(settings.config),
                    )
                after = measurer.requests_by_source()
                sent = {n: c - before.get(n, 0) for n, c in after.items() if c - before.get(n, 0)}
            finally:
                store.close()
            if stop.is_set():
                _interrupted(args, bf, sent, run_id)
    finally:
        measurer.close()
    _print(args, bf, sent, run_id=run_id)
    return EXIT_FAILED if any(r.failed for r in bf.reports) else EXIT_OK


def _interrupted(args: Any, bf: Backfill, sent: dict[str, int], run_id: str | None) -> None:
    """Report what was stored and leave now: requests in flight (or sleeping on a rate
    limit) and connections being closed must not hold the exit."""
    from okrsync.cli.interrupt import leave

    _print(args, bf, sent, run_id=run_id)
    kept = sum(r.done and r.points > r.skipped_existing for r in bf.reports)
    print(
        f"okrsync: interrupted; {kept} key result(s) stored, the rest not started: "
        "run the same backfill again to continue",
        file=sys.stderr,
    )
    leave()


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C and SIGTERM set `stop`: the KR being fetched is dropped, the stored stay;
    a second one leaves at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handle(signum: int, frame: object) -> None:
        if stop.is_set():  # a second signal: leave at once (what is stored stays)
            from okrsync.cli.interrupt import leave

            leave()
        stop.set()
        print(
            "okrsync: stopping after the key result being stored (again to leave at once)",
            file=sys.stderr,
            flush=True,
        )

    for s in previous:
        signal.signal(s, handle)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def _bar(quiet: bool) -> Iterator[Any]:
    """A progress line on a terminal (stderr): points stored, requests, ETA."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    began = time.monotonic()
    lock = threading.Lock()

    def show(points: int, total: int, calls: int, all_calls: int) -> None:
        elapsed = time.monotonic() - began
        eta = elapsed / calls * (all_calls - calls) if calls else 0.0
        filled = points * 30 // max(total, 1)
        with lock:
            print(
                f"\rbackfilling [{'█' * filled}{'░' * (30 - filled)}] {points}/{total} points, "
                f"{calls}/{all_calls} requests, ETA {format_duration(round(eta)) if calls else '?'}"
                "   ",
                end="",
                file=sys.stderr,
                flush=True,
            )

    try:
        yield show
    finally:
        print(file=sys.stderr)


def _json(bf: Backfill, sent: dict[str, int] | None, run_id: str | None, dry: bool) -> Any:
    def kr(r: KRReport) -> dict[str, Any]:
        return {
            "id": r.id,
            "points": r.points,
            "written": r.written,
            "skipped_existing": r.skipped_existing,
            "failed": len(r.failed),
            "requests": r.requests,
            "skipped_reason": r.skipped_reason,
            "no_data": r.no_data,
            "superseded": r.superseded,
            "failures": [{"at": to_text(at), "error": e} for at, e in r.failed],
            "estimated_seconds": round(r.estimate_s, 1),
            "done": r.done,
        }

    return {
        "krs": [kr(r) for r in bf.reports],
        "requests": bf.by_source if sent is None else sent,
        "dry_run": dry,
        "run_id": run_id,
        "from": to_text(bf.span.start),
        "to": to_text(bf.span.end),
        "step": format_duration(bf.span.step.total_seconds()),
        "estimated_seconds": round(bf.estimate_s, 1),
    }


def _print(
    args: Any,
    bf: Backfill,
    sent: dict[str, int] | None,
    *,
    dry_run: bool = False,
    run_id: str | None = None,
) -> None:
    if args.json:
        print(json.dumps(_json(bf, sent, run_id, dry_run), indent=2))
        return
    span = bf.span
    step = format_duration(span.step.total_seconds())
    head = "plan (dry run: nothing is written)" if dry_run else "backfill"
    print(f"{head}: {span.start:%Y-%m-%d %H:%M} to {span.end:%Y-%m-%d %H:%M} UTC every {step}")
    width = max((len(r.id) for r in bf.reports), default=0)
    for r in bf.reports:
        if r.skipped_reason is not None:
            print(f"- {r.id:<{width}}  skipped: {r.skipped_reason}")
            continue
        todo = r.points - r.skipped_existing
        parts = [f"{r.points} points"]
        if dry_run:
            parts.append(f"{todo} to measure")
        else:
            parts.append(f"{r.written} written")
            if r.no_data:
                parts.append(f"{r.no_data} no data")
            if r.failed:
                parts.append(f"{len(r.failed)} failed")
            if r.superseded:
                parts.append(f"{r.superseded} superseded")
        if r.skipped_existing:
            parts.append(f"{r.skipped_existing} already measured")
        parts.append(f"{r.requests} request{'' if r.requests == 1 else 's'}")
        if dry_run:
            parts.append(f"about {format_duration(max(round(r.estimate_s), 1))}")
        elif not r.done:
            parts.append("not stored (interrupted)")
        mark = "✗" if r.failed else "✓"
        print(f"{mark} {r.id:<{width}}  " + ", ".join(parts))
        for at, error in r.failed[:10]:
            print(f"    {at:%Y-%m-%dT%H:%M:%SZ}: {error}")
        if len(r.failed) > 10:
            print(f"    ... and {len(r.failed) - 10} more failed points (--json lists all)")
    counts = bf.by_source if sent is None else sent
    total = ", ".join(f"{n} {c}" for n, c in sorted(counts.items())) or "none"
    if dry_run:
        print(
            f"total: {bf.points} points to measure, requests {total}, "
            f"about {format_duration(max(round(bf.estimate_s), 1))}"
        )
    else:
        print(f"requests: {total}")
