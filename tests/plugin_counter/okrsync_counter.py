"""An okrsync connector for a counter API: `GET {url}/counters/{counter}` -> `{"value": N}`.

It declares what a source and a query look like; okrsync validates both at `validate`,
retries what it marks transient, and stores what it reads.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import requests
from pydantic import Field

from okrsync.connector import (
    AuthError,
    FetchError,
    NonBlank,
    QueryBase,
    RateLimitedError,
    Reading,
    SourceBase,
    TransientFetchError,
    Window,
)
from okrsync.secrets import env_name, read_secret


class CounterSource(SourceBase):
    """`sources.<name>` of type counter; token (optional) from OKRSYNC_<NAME>_TOKEN."""

    type: Literal["counter"] = "counter"
    url: str = Field(description="Base URL of the counter API")


class CounterQuery(QueryBase):
    """What a key result asks: one counter, optionally scaled."""

    counter: NonBlank = Field(description="counter: the counter's name")
    scale: float = Field(1.0, description="counter: multiply the value by this")


class CounterConnector:
    """Reads one counter per query; never retries (okrsync does)."""

    source_model: ClassVar[type[CounterSource]] = CounterSource
    query_model: ClassVar[type[CounterQuery]] = CounterQuery

    def __init__(self, name: str, source: CounterSource) -> None:
        self.name = name
        self.source = source
        self.requests = 0
        self._session = requests.Session()

    def fetch(self, query: CounterQuery, window: Window) -> Reading:
        """The counter's value now, times `scale`."""
        url = f"{self.source.url.rstrip('/')}/counters/{query.counter}"
        token_var = env_name(self.name, "TOKEN")
        token = read_secret(token_var)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.requests += 1
        try:
            answer = self._session.get(url, headers=headers, timeout=self.source.timeout)
        except requests.Timeout:
            raise TransientFetchError(f"{self.name}: no answer (timeout)") from None
        except requests.ConnectionError:
            raise TransientFetchError(f"{self.name}: cannot connect (refused?) to {url}") from None
        status = answer.status_code
        html = "html" in answer.headers.get("Content-Type", "")
        if status in (401, 403):
            raise AuthError(f"{self.name}: HTTP {status}: check {token_var}")
        if status == 429:
            wait = answer.headers.get("Retry-After", "")
            raise RateLimitedError(f"{self.name}: rate limited", float(wait) if wait else None)
        if status >= 500:
            what = "an HTML error page" if html else answer.text[:100]
            raise TransientFetchError(f"{self.name}: server error {status}: {what}")
        if status >= 400:
            raise FetchError(f"{self.name}: HTTP {status} for counter {query.counter!r}")
        try:
            value = answer.json()["value"]
        except (ValueError, KeyError, TypeError):
            raise FetchError(f"{self.name}: the answer has no `value`") from None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise FetchError(f"{self.name}: `value` is {value!r}, not a number")
        return Reading(value * query.scale)

    def close(self) -> None:
        self._session.close()
