"""The moment a command works at: `--now` when given, else the clock. One module reads
the clock for every command, so there is one place to pin it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from okrsync.errors import UsageError
from okrsync.timefmt import parse_instant
from okrsync.timefmt import utcnow as _clock


def utcnow() -> datetime:
    return _clock()


def now_of(args: Any) -> datetime:
    """`--now` when the command was given one (exit 2 when it is not a moment), else now."""
    if getattr(args, "now", None):
        try:
            return parse_instant(args.now)
        except ValueError as exc:
            raise UsageError(f"--now: {exc}") from None
    return utcnow()
