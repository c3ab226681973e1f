"""structlog setup: readable lines on a TTY, JSON lines otherwise, secrets always redacted."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from okrsync.secrets import redact


def redact_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: replace every known secret in every string value with ***."""
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = redact(value)
        elif isinstance(value, list | tuple | dict | Exception):
            text = str(value)
            if redact(text) != text:  # a secret inside a container: show it redacted, as text
                event[key] = redact(text)
    return event


def _stderr_logger(*_: Any) -> structlog.PrintLogger:
    """A logger writing to the current sys.stderr (looked up per use, not at setup, so a
    stream swapped or closed since, as test runners do, never breaks a log call)."""
    return structlog.PrintLogger(file=sys.stderr)


def setup(level: str = "warning", fmt: str = "auto") -> None:
    """Configure logging to stderr; `fmt` is auto (console on a TTY), console or json."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
