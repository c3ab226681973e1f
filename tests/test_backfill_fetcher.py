"""The backfill's fetcher on its own: a source's slot is held per attempt, and a stop cuts
a retry's long wait short (a rate-limited request must not hold a Ctrl-C for minutes)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from okrsync.config.loader import Config, load
from okrsync.connector import Connector, QueryBase, Reading, Window
from okrsync.errors import RateLimitedError
from okrsync.measure.backfill import Fetcher
from okrsync.measure.backfill_plan import Request
from okrsync.measure.measurer import Measurer


class Limited:
    """Answers the first request with a 429 asking for 300 s, every later one with 7."""

    def __init__(self) -> None:
        self.requests = 0
        self._lock = threading.Lock()

    def fetch(self, query: QueryBase, window: Window) -> Reading:
        with self._lock:
            self.requests += 1
            first = self.requests == 1
        if first:
            raise RateLimitedError("jira: HTTP 429 Too Many Requests", 300)
        return Reading(7)

    def close(self) -> None:
        pass


def config(tmp_path: Path) -> Config:
    (tmp_path / "c.yaml").write_text(
        """
period: {name: Q, start: 2026-10-01, end: 2026-12-31}
sources:
  jira: {type: jira, url: "http://127.0.0.1:9", deployment: datacenter, max_concurrency: 1}
objectives:
  - {id: o, title: O, key_results: [{id: k, source: jira, jql: 'x <= "{now}"', target: 9}]}
"""
    )
    return load(tmp_path / "c.yaml")


def requests(n: int) -> list[Request]:
    day = datetime(2026, 10, 1, tzinfo=UTC)
    return [
        Request("jira", {"jql": f'x <= "{d}"'}, [day + timedelta(days=d)], False, timedelta(days=1))
        for d in range(n)
    ]


def test_a_stop_cuts_a_rate_limit_wait_short_and_the_slot_is_free_meanwhile(
    tmp_path: Path,
) -> None:
    source = Limited()

    def factory(name: str, cfg: Config) -> Connector:
        return source

    stop = threading.Event()
    measurer = Measurer(config(tmp_path), factory=factory)
    fetcher = Fetcher(config(tmp_path), measurer, stop=stop)
    (todo,) = requests(1)
    began = time.monotonic()
    fetcher.submit([todo])
    deadline = time.monotonic() + 10
    while source.requests < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # the 429 came back: the fetch now waits 300 s before its retry
    slot = measurer.limits["jira"]
    assert slot.acquire(blocking=False)  # a live measurement of jira is not held up
    slot.release()
    stop.set()
    fetcher.close()
    assert time.monotonic() - began < 5  # not the 300 s the server asked for
    assert fetcher.done == 1 and source.requests == 1
    assert "stopped" in next(iter(todo.errors.values()))
    assert not todo.readings
