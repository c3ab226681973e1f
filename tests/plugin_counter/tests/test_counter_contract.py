"""The counter connector passes okrsync's shared connector contract (okrsync.testing)."""

from __future__ import annotations

from typing import Any

from okrsync_counter import CounterConnector, CounterQuery, CounterSource

from okrsync.testing import Ask, ConnectorContract, ask


class TestCounterContract(ConnectorContract):
    """The nine shared scenarios against GET /counters/deploys."""

    ENDPOINT = ("GET", "/counters/deploys")
    expected_value = 42.0
    empty_expectation = 0.0

    def make(self, base_url: str) -> CounterConnector:
        return CounterConnector("counts", CounterSource(url=base_url, timeout=2))

    def query(self) -> Ask[CounterQuery]:
        return ask(CounterQuery, counter="deploys")

    def good_body(self) -> Any:
        return {"value": 42}

    def empty_body(self) -> Any:
        return {"value": 0}

    def auth_failure_body(self) -> Any:
        return {"error": "unauthorized"}
