"""What each CLI command does, once its arguments are parsed."""

from __future__ import annotations

import itertools
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from okrsync import logs
from okrsync.cli import moment
from okrsync.cli.deliveries import deliveries, summary
from okrsync.cli.exits import EXIT_DELIVERY, EXIT_FAILED, EXIT_INVALID, EXIT_OK
from okrsync.cli.settings import Settings
from okrsync.config.loader import Config
from okrsync.errors import UsageError
from okrsync.measure.measurement import Measurement
from okrsync.progress.maths import clamp
from okrsync.store.store import Store

if TYPE_CHECKING:
    from okrsync.progress.tree import Tree


def run(args: Any) -> int:
    try:
        settings = settings_for(args)
    except ValidationError as exc:
        problems = "; ".join(
            f"OKRSYNC_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise UsageError(f"invalid setting: {problems}") from None
    logs.setup(settings.log_level, settings.log_format)
    handler = {
        "validate": validate,
        "schema": schema,
        "sync": sync,
        "status": status,
        "grade": grade,
        "report": report,
        "history": history,
        "checkin": checkin,
        "run": run_daemon,
        "deliveries": deliveries,
        "explain": explain,
        "plan": plan,
        "apply": apply,
        "backfill": backfill,
        "store": store,
    }[args.command]
    return handler(args, settings)


def _refuse_now(args: Any, command: str) -> None:
    if getattr(args, "now", None) is not None:
        raise UsageError(
            f"{command} measures the sources as they are now, so it takes no --now "
            "(to look at a past moment: okrsync status --now T)"
        )


def store(args: Any, settings: Settings) -> int:
    from okrsync.cli.store_copy import store as command

    return command(args, settings)


def backfill(args: Any, settings: Settings) -> int:
    from okrsync.cli.backfill import backfill as command

    return command(args, settings, load_config(settings))


def validate(args: Any, settings: Settings) -> int:
    from okrsync.cli.render import count

    config = load_config(settings)
    krs = sum(1 for _ in config.key_results())
    print(
        f"{settings.config}: ok: {count(len(config.objectives), 'objective')}, "
        f"{count(krs, 'key result')}, {count(len(config.sources), 'source')}, "
        f"period {config.period.name}"
    )
    return EXIT_OK


def schema(args: Any, settings: Settings) -> int:
    from okrsync.config.schema import schema_json

    print(schema_json())
    return EXIT_OK


def _progress_printer() -> Any:
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        filled = done * 30 // max(total, 1)
        end = "\n" if done == total else ""
        print(
            f"\rmeasuring [{'█' * filled}{'░' * (30 - filled)}] {done}/{total} queries",
            end=end,
            file=sys.stderr,
            flush=True,
        )

    return show


def sync(args: Any, settings: Settings) -> int:
    from okrsync.cli.interrupt import within_grace
    from okrsync.review.gitinfo import config_commit
    from okrsync.service.once import RunResult, run_once

    kind = getattr(args, "kind", "sync")  # `apply` is sync --once under its own name
    _refuse_now(args, kind)
    config = load_config(settings)
    now = moment.utcnow()
    store = None if args.dry_run else Store(settings.db)
    reader = Store(settings.db, create=False) if args.dry_run else store
    commit = None if args.dry_run else config_commit(settings.config)

    def measure() -> RunResult:
        return run_once(
            config,
            store,
            now,
            only=args.only,
            progress=_progress_printer(),
            reader=reader,
            kind=kind,
            commit=commit,
        )

    try:
        result = within_grace(measure, args.grace)
    finally:
        if reader:
            reader.close()
    pushed = summary(result.deliveries)
    if result.idle:
        print(result.idle)
        if pushed:
            print(pushed)
        return EXIT_DELIVERY if result.deliveries and result.deliveries.failed else EXIT_OK
    for m in result.measurements:
        print(_line(m, config))
    if result.skipped_manual and not args.only:
        print(f"- manual (check-in, not measured): {', '.join(result.skipped_manual)}")
    failed = len(result.failed)
    where = f"stored in {store.path}" if store else "dry run, nothing stored"
    failures = f", {failed} failed (recorded with the error)" if failed else ""
    print(
        f"measured {len(result.measurements) - failed} of {len(result.measurements)} "
        f"key results{failures}; {where}; {_per_source(result)}"
    )
    if pushed:
        print(pushed)
    if kind == "apply":
        from okrsync.cli.plan import applied_line

        print(applied_line(result.run_id, config.digest, commit))
    if failed:
        return EXIT_FAILED
    return EXIT_DELIVERY if result.deliveries and result.deliveries.failed else EXIT_OK


def plan(args: Any, settings: Settings) -> int:
    """`okrsync plan`: what applying the config would change (see okrsync.cli.plan)."""
    from okrsync.cli.plan import plan as show_plan

    return show_plan(args, settings, load_config(settings), moment.now_of(args))


def apply(args: Any, settings: Settings) -> int:
    """`sync --once` under the name `apply` (the run records the config's hash and commit)."""
    import argparse

    return sync(argparse.Namespace(**{**vars(args), "dry_run": False, "kind": "apply"}), settings)


def _per_source(result: Any) -> str:
    """`queries per source: prom=3; requests per source: prom=9 (HTTP, retries included)`."""
    queries = ", ".join(f"{n}={c}" for n, c in sorted(result.queries.items())) or "none"
    requests = (
        ", ".join(
            f"{n}={c}"
            + (f" ({result.not_modified[n]} answered 304)" if result.not_modified.get(n) else "")
            for n, c in sorted(result.requests.items())
        )
        or "none"
    )
    return (
        f"queries per source: {queries}; requests per source: {requests} (HTTP, retries included)"
    )


def _line(m: Measurement, config: Config) -> str:
    from okrsync.cli.render import percent
    from okrsync.numfmt import number

    found = config.find_kr(m.kr_id)
    unit = found[1].unit if found else None
    if m.error is not None:
        return f"✖ {m.kr_id}: {m.error}"
    progress = ""
    if m.progress is not None:
        shown = clamp(m.progress)
        raw = f" (raw {percent(m.progress)}%)" if shown != m.progress else ""
        progress = f"  progress {percent(shown)}%{raw}"
    note = f"  ({m.note})" if m.note else ""
    return f"✔ {m.kr_id} = {number(m.value, unit)}{progress}  {m.status}{note}"


def period_tree(args: Any, settings: Settings, now: datetime) -> Tree:
    """The tree of the period `--period` / `--now` ask for, from the store, read-only."""
    from okrsync.progress.definitions import from_config
    from okrsync.progress.periods import choose, previous_values, resolve
    from okrsync.progress.tree import evaluate

    config = load_config(settings)
    store = Store(settings.db, create=False)
    try:
        chosen = choose(from_config(config), store, args.period, now if args.now else None)
        defs = resolve(chosen, store, now)
        ids = [k.id for k in defs.key_results()]
        observations = store.observations(ids, now, defs.period)
        previous = previous_values(defs, store, now)
    finally:
        store.close()
    return evaluate(defs, observations, now, previous)


def status(args: Any, settings: Settings) -> int:
    from okrsync.cli.render import status_json, status_text

    now = moment.now_of(args)
    tree = period_tree(args, settings, now)
    if args.json:
        print(json.dumps(status_json(tree, now), indent=2))
    else:
        print(status_text(tree))
    return EXIT_OK


def grade(args: Any, settings: Settings) -> int:
    from okrsync.cli.scorecard import scorecard_json, scorecard_markdown, scorecard_text

    if args.json and args.md == "-":
        raise UsageError("--json and --md - both write to stdout: give --md a file name")
    tree = period_tree(args, settings, moment.now_of(args))
    if args.md and args.md != "-":
        try:
            with open(args.md, "w", encoding="utf-8") as out:
                out.write(scorecard_markdown(tree))
        except OSError as exc:
            raise UsageError(f"--md {args.md}: cannot write: {exc.strerror}") from None
    if args.json:
        print(json.dumps(scorecard_json(tree), indent=2))
    elif args.md == "-":
        print(scorecard_markdown(tree), end="")
    else:
        print(scorecard_text(tree))
    return EXIT_OK


def report(args: Any, settings: Settings) -> int:
    from okrsync.cli.reporting import report as write_report

    return write_report(args, settings, moment.now_of(args), load_config(settings))


def history(args: Any, settings: Settings) -> int:
    from okrsync.cli.render import history_lines, json_array_lines

    until = moment.now_of(args) if args.now else None
    store = Store(settings.db, create=False)
    try:
        rows = store.history_rows(args.kr_id, args.limit, until)
        first = next(rows, None)
        known = store.known_kr(args.kr_id)
        if first is None and known is None:
            raise UsageError(_unknown_kr(args.kr_id, store))
        if known and known["retired_at"] and not args.json:
            retired = known["retired_at"]
            print(f"{args.kr_id}: retired at {retired} (removed from config; history kept)")
        every = itertools.chain([first] if first is not None else [], rows)
        out = sys.stdout
        if args.json:  # streamed: a history of 1,000,000 rows in constant memory
            for piece in json_array_lines(every):
                out.write(piece)
            out.write("\n")
        else:
            for line in history_lines(args.kr_id, every):
                out.write(line + "\n")
    finally:
        store.close()
    return EXIT_OK


def _unknown_kr(kr_id: str, store: Store) -> str:
    """`no key result 'deplys' in okrsync.db (did you mean deploys?)`, or that there is no
    store there yet."""
    import difflib

    message = f"no key result '{kr_id}' in {store.path}"
    if store.url.kind == "sqlite" and not Path(store.url.path).exists():
        return message + " (no store there yet: okrsync sync --once or apply creates it)"
    close = difflib.get_close_matches(kr_id, store.kr_ids(), n=3)
    return message + (f" (did you mean {', '.join(close)}?)" if close else "")


def checkin(args: Any, settings: Settings) -> int:
    from okrsync.cli.checkin import checkin as record

    return record(args, settings)


def explain(args: Any, settings: Settings) -> int:
    from okrsync.cli.explain import explain as show

    return show(args, settings)


__all__ = ["EXIT_INVALID", "run"]


def run_daemon(args: Any, settings: Settings) -> int:
    """`okrsync run`: the daemon until SIGTERM; `--once` is exactly `sync --once`."""
    import argparse
    import os

    _refuse_now(args, "run" + (" --once" if args.once else ""))
    if args.once:
        once = argparse.Namespace(**{**vars(args), "dry_run": False, "only": None})
        return sync(once, settings)
    from okrsync.service import serve as service
    from okrsync.service.options import Options

    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.log_level is None and "OKRSYNC_LOG_LEVEL" not in os.environ:
        logs.setup("info", settings.log_format)  # a service logs each fetch by default
    opts = Options(
        config=settings.config,
        db=settings.db,
        listen=args.listen or settings.listen,
        grace=args.grace,
        workers=args.workers,
        watch=args.watch,
        lease=args.lease,
    )
    if service.serve(opts):  # fetches abandoned after --grace: their threads must not hold us
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_OK)
    return EXIT_OK


def settings_for(args: Any) -> Settings:
    """Settings from the environment, overridden by the flags given on the command line."""
    overrides = {
        k: getattr(args, k)
        for k in ("config", "db", "log_level", "log_format")
        if getattr(args, k, None) is not None
    }
    return Settings(**overrides)


def load_config(settings: Settings) -> Config:
    from okrsync.config.loader import load

    return load(settings.config)
