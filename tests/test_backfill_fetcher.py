"""The backfill's planner and fetcher on their own: range requests stay on their grid, a
source's slot is held per attempt, and a stop cuts a retry's long wait short (a
rate-limited request must not hold a Ctrl-C for minutes)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from okrsync.config.loader import Config, load
from okrsync.connector import Connector, QueryBase, Reading, Window
from okrsync.errors import RateLimitedError
from okrsync.measure.backfill import Fetcher
from okrsync.measure.backfill_plan import Job, Request, plan
from okrsync.measure.measurer import Measurer
from okrsync.service.backfill import span_of


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


def test_range_requests_stay_on_their_grid_when_a_west_of_utc_period_starts_after_midnight(
    tmp_path: Path,
) -> None:
    """A formula of a Prometheus and a Jira input in a New York period: its points are at
    00:00 UTC except the first, at the period start (04:00 UTC); a range request asks
    start + k*step, so that first point gets a request of its own."""
    (tmp_path / "c.yaml").write_text(
        """
period: {name: Q, start: 2026-10-01, end: 2026-12-31, timezone: America/New_York}
sources:
  jira: {type: jira, url: "http://127.0.0.1:9", deployment: datacenter}
  prom: {type: prometheus, url: "http://127.0.0.1:9"}
objectives:
  - id: o
    title: O
    key_results:
      - {id: k, formula: "a + b", target: 9, inputs: {a: {source: jira, jql: 'x <= "{now}"'},
         b: {source: prom, query: up}}}
"""
    )
    cfg = load(tmp_path / "c.yaml")
    (kr,) = [k for _, k in cfg.key_results()]
    span = span_of(cfg, None, None, 86400, datetime(2026, 10, 5, 12, tzinfo=UTC))
    (job,) = [Job(kr, span.instants(dated=True))]
    assert job.instants[0] == datetime(2026, 10, 1, 4, tzinfo=UTC)
    assert job.instants[1:] == [datetime(2026, 10, d, tzinfo=UTC) for d in range(2, 6)]
    requests = plan(cfg, [job], span)
    ranged = [r for r in requests if r.ranged]
    assert [r.instants for r in ranged] == [job.instants[:1], job.instants[1:]]
    for _, _, by_instant in job.wants:
        assert set(by_instant) == set(job.instants)
        assert all(at in request.instants for at, request in by_instant.items())
