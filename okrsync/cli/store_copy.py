"""`okrsync store copy FROM_URL TO_URL`: the command around `okrsync.store.copy`."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from okrsync.cli.exits import EXIT_OK
from okrsync.cli.settings import Settings
from okrsync.errors import UsageError
from okrsync.store import copy as copying
from okrsync.store.location import StoreUrl, parse
from okrsync.store.store import Store


def store(args: Any, settings: Settings) -> int:
    if getattr(args, "action", None) != "copy":
        raise UsageError("okrsync store: give an action: copy (see okrsync store copy --help)")
    source_url, target_url = parse(args.source), parse(args.target)
    if _where(source_url) == _where(target_url):
        raise UsageError(f"FROM_URL and TO_URL are the same store ({source_url})")
    source = Store(source_url, create=False)
    try:
        if not any(copying.count(source, t) for t in copying.tables(source)):
            raise UsageError(f"{source.path} holds no okrsync rows: nothing to copy")
        target = Store(target_url)
        try:
            copying.refuse_unless_empty(target)  # before any work: say so at once
            began = time.monotonic()
            result = copying.copy(source, target, _bar())
        finally:
            target.close()
    finally:
        source.close()
    if sys.stderr.isatty():
        print(file=sys.stderr)
    width = max(len(c.table) for c in result)
    print(f"copied {source.path} -> {target.path} in {time.monotonic() - began:.1f}s")
    for c in result:
        print(f"  {c.table:<{width}}  {c.target:>12,} rows (source {c.source:,})")
    total = sum(c.target for c in result)
    print(f"verified: every table holds as many rows as the source ({total:,} rows in all)")
    return EXIT_OK


def _where(url: StoreUrl) -> str:
    """One name per store: a SQLite file by its absolute path."""
    return str(Path(url.path).resolve()) if url.kind == "sqlite" else str(url)


def _bar() -> copying.Progress | None:
    """A progress line on a terminal (stderr)."""
    if not sys.stderr.isatty():
        return None

    def show(table: str, _: int, done: int, total: int) -> None:
        filled = done * 30 // max(total, 1)
        print(
            f"\rcopying [{'█' * filled}{'░' * (30 - filled)}] {done:,}/{total:,} rows ({table})   ",
            end="",
            file=sys.stderr,
            flush=True,
        )

    return show
