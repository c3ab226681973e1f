"""`/report` on the daemon: the HTML report, rendered from the store when asked and cached
per filter set until the next stored measurement (a batch or a check-in, from any process),
a config change, or MAX_AGE, whichever comes first."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs

import structlog

from okrsync.errors import StoreError, UsageError
from okrsync.progress.definitions import Definitions
from okrsync.report import html
from okrsync.report.model import Filters, NotFound, build
from okrsync.store.series import version
from okrsync.store.store import Store

log = structlog.get_logger("okrsync.service.report")
PARAMS = ("owner", "objective", "period")
MAX_AGE = 600.0  # seconds: statuses turn stale with time even when nothing is measured
CACHED = 32  # filter sets kept
MAX_QUERY = 2048
TEXT = "text/plain; charset=utf-8"
Answer = tuple[int, str, bytes]
Current = Callable[[], tuple[Definitions, str] | None]
"""The running config's definitions and its hash (None before one is loaded)."""


def _text(code: int, message: str) -> Answer:
    return code, TEXT, (message + "\n").encode()


class ReportPage:
    """Answers GET /report?owner=&objective=&period= with (status, content type, body)."""

    def __init__(
        self,
        db: str | Path,
        current: Current,
        clock: Callable[[], datetime],
        ticks: Callable[[], float],
    ) -> None:
        self.db, self.current, self.clock, self.ticks = db, current, clock, ticks
        self._cache: OrderedDict[tuple[object, ...], tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()  # one render at a time: a report is CPU-bound
        self.renders = 0

    def get(self, query: str) -> Answer:
        try:
            filters = parse(query)
        except ValueError as exc:
            return _text(400, f"bad request: {exc}")
        loaded = self.current()
        if loaded is None:
            return _text(503, "no config loaded yet: try again in a moment")
        defs, digest = loaded
        try:
            with self._lock:
                return 200, "text/html; charset=utf-8", self._page(defs, digest, filters)
        except NotFound as exc:
            return _text(404, f"not found: {exc}")
        except UsageError as exc:
            text = str(exc)  # the CLI's words name its flag; here it is the query parameter
            text = "period " + text.removeprefix("--period ") if text.startswith("--") else text
            code = 404 if "no such period" in text else 400
            return _text(code, f"{'not found' if code == 404 else 'bad request'}: {text}")
        except StoreError as exc:
            return _text(503, f"store: {exc}")
        except Exception as exc:  # a bug in rendering is a short 500, never a traceback
            log.exception("report_failed", filters=filters.describe())
            return _text(500, f"internal error: {type(exc).__name__} (see the daemon's log)")

    def _page(self, defs: Definitions, digest: str, filters: Filters) -> bytes:
        store = Store(self.db, create=False)
        try:
            key = (filters, digest, version(store))
            hit = self._cache.get(key)
            if hit is not None and self.ticks() - hit[0] < MAX_AGE:
                self._cache.move_to_end(key)
                return hit[1]
            body = html.render(build(defs, store, self.clock(), filters)).encode()
        finally:
            store.close()
        self.renders += 1
        self._cache[key] = (self.ticks(), body)
        self._cache.move_to_end(key)
        while len(self._cache) > CACHED:
            self._cache.popitem(last=False)
        return body


def parse(query: str) -> Filters:
    """The filters of a query string; ValueError for anything else in it."""
    if len(query) > MAX_QUERY:
        raise ValueError(f"the query is longer than {MAX_QUERY} characters")
    try:
        found = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ValueError(f"cannot read the query '{query[:80]}'") from None
    unknown = sorted(set(found) - set(PARAMS))
    if unknown:
        raise ValueError(f"unknown parameter '{unknown[0]}': use {', '.join(PARAMS)}")
    values: dict[str, str | None] = {}
    for name in PARAMS:
        given = found.get(name, [])
        if len(given) > 1:
            raise ValueError(f"'{name}' given {len(given)} times: give it once")
        if given and not given[0].strip():
            raise ValueError(f"'{name}' is empty")
        values[name] = given[0] if given else None
    return Filters(values["period"], values["owner"], values["objective"])


def monotonic() -> float:
    return time.monotonic()
