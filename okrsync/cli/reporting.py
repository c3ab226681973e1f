"""`okrsync report`: build the report from the store (read-only) and write it as HTML
and/or Markdown."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from okrsync.cli.exits import EXIT_OK
from okrsync.cli.settings import Settings
from okrsync.config.loader import Config
from okrsync.errors import UsageError
from okrsync.progress.definitions import from_config
from okrsync.report.model import Filters, build
from okrsync.store.store import Store
from okrsync.timefmt import parse_instant


def report(args: Any, settings: Settings, now: datetime, config: Config) -> int:
    if not args.html and not args.md:
        raise UsageError(
            "report: say where to write it: --html FILE and/or --md FILE ('-': stdout)"
        )
    if args.html == "-" and args.md == "-":
        raise UsageError("--html - and --md - both write to stdout: give one of them a file name")
    since = None
    if args.since:
        try:
            since = parse_instant(args.since)
        except ValueError as exc:
            raise UsageError(f"--since: {exc}") from None
        if since >= now:
            raise UsageError(
                f"--since {args.since}: give a moment before the report's "
                f"({now:%Y-%m-%dT%H:%M:%SZ})"
            )
    filters = Filters(args.period, args.owner, args.objective)
    store = Store(settings.db, create=False)
    try:
        built = build(from_config(config), store, now, filters, pinned=bool(args.now), since=since)
    finally:
        store.close()
    outputs = []
    if args.md:
        from okrsync.report.markdown import render as markdown

        outputs.append(("--md", args.md, markdown(built)))
    if args.html:
        from okrsync.report.html import render as html

        outputs.append(("--html", args.html, html(built)))
    for flag, target, _ in outputs:  # every path is checked before any file is written
        if target != "-":
            _check_writable(flag, Path(target))
    for flag, target, text in outputs:
        if target == "-":
            sys.stdout.write(text)
            continue
        try:
            with open(target, "w", encoding="utf-8") as out:
                out.write(text)
        except OSError as exc:
            raise UsageError(f"{flag} {target}: cannot write: {exc.strerror}") from None
        count = len(built.krs)
        print(f"wrote {target} ({count} key result{'' if count == 1 else 's'})", file=sys.stderr)
    return EXIT_OK


def _check_writable(flag: str, path: Path) -> None:
    """A clear exit 2 for an output path that cannot be written, before anything is."""
    folder = path.parent
    if path.is_dir():
        problem = "it is a directory"
    elif not folder.is_dir():
        problem = f"no such directory {folder}"
    elif not os.access(path if path.exists() else folder, os.W_OK):
        problem = "permission denied"
    else:
        return
    raise UsageError(f"{flag} {path}: cannot write: {problem}")
