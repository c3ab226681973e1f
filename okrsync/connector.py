"""The public interface a connector implements: what it declares and what it is given.

A connector is a class with two models and two methods (the singer-sdk way: it declares,
okrsync runs it)::

    class MyConnector:
        source_model = MySource      # a SourceBase subclass: the keys of `sources.<name>`
        query_model = MyQuery        # a QueryBase subclass: the query keys a KR gives

        def __init__(self, name: str, source: MySource) -> None: ...
        def fetch(self, query: MyQuery, window: Window) -> Reading: ...
        def close(self) -> None: ...
        requests: int                # HTTP requests made, for the per-source summary

A connector whose source can evaluate a query at any past instant over a whole span in
one request (Prometheus's query_range) also implements `fetch_range` (RangeConnector);
`okrsync backfill` uses it. Others are backfilled one `fetch` per day, and only when the
query names the day with `{now}`; a connector may say how in a class attribute
`as_of_hint` (e.g. 'write the JQL for an as-of date, e.g. resolved <= "{now}"'). Optional
hints for a backfill's plan: `max_range_points` (class attribute: instants one range
request asks at most) and `pace(query) -> float` (seconds between two requests of that
query that the connector's own rate limits allow). `main_query_key` (class attribute)
names the query key a bare query string fills, as an SLO's `good: <query>` is written
(without it, an SLO's queries on that source are mappings of its query fields).

It is found through the entry-point group `okrsync.connectors` (entry name: the `type:`
written in YAML; value: `module:Class`). okrsync validates every `sources.<name>` block
with `source_model` and every key result's query fields with `query_model` when the
config loads, so `okrsync validate` reports their mistakes as `file:line`.

`fetch` raises the errors below (NoDataError when the query matched nothing, which an
SLO counts as no events); it never retries (okrsync's one retry policy does) and
knows nothing of OKRs, progress or storage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from okrsync.errors import AuthError, FetchError, NoDataError, RateLimitedError, TransientFetchError

__all__ = [
    "AuthError",
    "Connector",
    "FetchError",
    "NoDataError",
    "NonBlank",
    "QueryBase",
    "RangeConnector",
    "RangePoint",
    "RateLimitedError",
    "Reading",
    "SourceBase",
    "TransientFetchError",
    "Window",
    "bound_answer",
]

ANSWER_LIMIT = 4096
"""The most bytes of JSON a reading's raw answer keeps (okrsync stores it with the value)."""


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


NonBlank = Annotated[str, AfterValidator(_not_blank)]
"""A query string that is not empty or only spaces (a JQL, a PromQL, a search)."""


class SourceBase(BaseModel):
    """Keys every source has; a connector subclasses it with its own (never secrets: those
    come from the environment as OKRSYNC_<SOURCE>_...)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    type: str
    timeout: float = Field(
        10.0, gt=0, description="Seconds one request (one attempt) may take in all."
    )
    max_concurrency: int = Field(4, ge=1, description="Requests in flight at once to this source.")
    max_response_bytes: int = Field(
        10_000_000,
        ge=1,
        description="Largest answer (after decompression) one request may read; past it, an error.",
    )


class QueryBase(BaseModel):
    """The query keys a key result (or formula input) gives its connector; unknown keys are
    rejected. A missing required key reads `<type> sources need `<key>`` in `validate`."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


@dataclass(frozen=True)
class Window:
    """The period so far: from its first instant to its end (both aware, UTC)."""

    since: datetime
    until: datetime
    at: datetime | None = None
    """When set, the instant to evaluate the query at, for a source that can (Prometheus'
    `time`): an SLO's queries are asked for one instant, so good and total count the same
    events even while new samples arrive between the requests."""


@dataclass(frozen=True)
class Reading:
    """A number a source gave, with an optional remark (e.g. 'median over newest 1000')
    and, optionally, the raw answer it came from (a small JSON object such as
    {"total": 42}; okrsync bounds it to ANSWER_LIMIT bytes and redacts secrets in it)."""

    value: float
    note: str | None = None
    answer: dict[str, Any] | None = field(default=None, compare=False)


def bound_answer(answer: dict[str, Any] | None, limit: int = ANSWER_LIMIT) -> dict[str, Any] | None:
    """`answer` when its JSON fits in `limit` bytes; otherwise its start as text, saying so:
    {"truncated": true, "bytes": N, "head": "..."}. Non-JSON values become their str()."""
    if answer is None:
        return None
    text = json.dumps(answer, default=str, sort_keys=False)
    size = len(text.encode())
    if size <= limit:
        parsed: dict[str, Any] = json.loads(text)
        return parsed
    keep = max(limit - 100, 0)
    while True:  # escaping in the head can grow it: shrink until the whole fits
        head = text.encode()[:keep].decode(errors="ignore")
        cut = {"truncated": True, "bytes": size, "head": head}
        over = len(json.dumps(cut).encode()) - limit
        if over <= 0 or keep == 0:
            return cut
        keep = max(keep - over - 16, 0)


class Connector(Protocol):
    """What okrsync calls on a connector instance (see the module docstring); the class
    also declares `source_model` and `query_model`, checked when it is loaded."""

    requests: int

    def __init__(self, name: str, source: Any) -> None: ...

    def fetch(self, query: Any, window: Window) -> Reading: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RangePoint:
    """One instant of a range answer: its reading, or why that instant gives no number
    (e.g. several series and no `reduce`). An instant with no data at all is absent."""

    at: datetime
    reading: Reading | None = None
    error: str | None = None


class RangeConnector(Connector, Protocol):
    """A connector that evaluates a query at every `step` from `start` to `end` (both
    included when on a step) in as few requests as its source allows."""

    def fetch_range(
        self, query: Any, window: Window, start: datetime, end: datetime, step: timedelta
    ) -> list[RangePoint]: ...
