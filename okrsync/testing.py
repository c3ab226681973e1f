"""The connector contract suite (`ConnectorContract`: the 9 scenarios) and its helpers,
shipped so plugins run the same tests as the built-ins (needs pytest and responses:
`pip install okrsync[testing]`)::

    from okrsync.testing import ConnectorContract, ask

    class TestMyContract(ConnectorContract):
        ENDPOINT = ("GET", "/api/count")
        expected_value = 42
        empty_expectation = 0
        def make(self, base_url): return MyConnector("my", MySource(type="my", url=base_url))
        def query(self): return ask(MyQuery, field="x")
        def good_body(self): return {"count": 42}
        ...
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

import pytest
import requests
import responses

from okrsync.connector import (
    AuthError,
    Connector,
    FetchError,
    QueryBase,
    RateLimitedError,
    TransientFetchError,
    Window,
)
from okrsync.measure.retry import call_with_retry

__all__ = [
    "HTML_PAGE",
    "WINDOW",
    "Ask",
    "ConnectorContract",
    "add_answer",
    "ask",
    "closed_port",
    "json_fixtures",
]

WINDOW = Window(datetime(2026, 10, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


Q = TypeVar("Q", bound=QueryBase, covariant=True)


class Ask(NamedTuple, Generic[Q]):
    """A validated query and its window: `conn.fetch(*ask(...))` calls fetch as okrsync does."""

    query: Q
    window: Window


def ask(model: type[Q], window: Window = WINDOW, **fields: Any) -> Ask[Q]:
    """The query a KR with these query keys gives a connector whose `query_model` is
    `model`, validated exactly as the config loader does."""
    return Ask(model.model_validate(fields), window)


def json_fixtures(folder: Path) -> Callable[[str], Any]:
    """A loader of the recorded API answers in `folder`: `load("search.json")`."""

    def load(name: str) -> Any:
        return json.loads((folder / name).read_text(encoding="utf-8"))

    return load


def add_answer(
    rsps: responses.RequestsMock,
    method: str,
    url: str,
    status: int,
    body: Any,
    headers: dict[str, str] | None = None,
    **kw: Any,
) -> None:
    """Register one answer: JSON for dicts and lists, raw for text, raised for exceptions."""
    kind = "json" if isinstance(body, dict | list) else "body"
    rsps.add(method, url, status=status, headers=headers, **{kind: body}, **kw)


def closed_port() -> int:
    """A loopback port nothing listens on, for connection-refused scenarios."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


HTML_PAGE = "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1>nginx</body></html>"


class ConnectorContract:
    """Shared scenarios; subclasses fill in the hooks marked 'provide'."""

    BASE_URL: ClassVar[str] = "http://127.0.0.1:9"
    ENDPOINT: ClassVar[tuple[str, str]]  # provide: (method, path) the query is asked at
    expected_value: ClassVar[float]
    # provide: the value an empty answer gives, or the FetchError type it raises
    empty_expectation: ClassVar[float | type[FetchError]]

    def make(self, base_url: str) -> Connector:  # provide
        raise NotImplementedError

    def query(self) -> Ask[QueryBase]:  # provide: e.g. ask(MyQuery, field=...)
        raise NotImplementedError

    def register(
        self,
        rsps: responses.RequestsMock,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the query's endpoint (`ENDPOINT`: method and path) with this status and body.

        Registered answers for one URL are returned in order (responses' documented
        behaviour), which the 5xx-then-success scenario relies on.
        """
        method, path = self.ENDPOINT
        add_answer(rsps, method, self.BASE_URL + path, status, body, headers)

    def good_body(self) -> Any:  # provide: the real API's answer for the query
        raise NotImplementedError

    def empty_body(self) -> Any:  # provide
        raise NotImplementedError

    def auth_failure_body(self) -> Any:  # provide: the real 401 body
        raise NotImplementedError

    def test_good_answer(self) -> None:
        """A well-formed answer gives its value; its raw answer, if any, is a JSON object."""
        with responses.RequestsMock() as rsps:
            self.register(rsps, 200, self.good_body())
            reading = self.make(self.BASE_URL).fetch(*self.query())
            assert reading.value == self.expected_value
            if reading.answer is not None:
                assert isinstance(reading.answer, dict)
                json.dumps(reading.answer)  # okrsync stores it as JSON

    def test_empty_answer(self) -> None:
        """An empty answer gives zero or a clear error, as the source's semantics say."""
        with responses.RequestsMock() as rsps:
            self.register(rsps, 200, self.empty_body())
            conn = self.make(self.BASE_URL)
            if isinstance(self.empty_expectation, type):
                with pytest.raises(self.empty_expectation):
                    conn.fetch(*self.query())
            else:
                assert conn.fetch(*self.query()).value == self.empty_expectation

    def test_auth_failure(self) -> None:
        """401 is an AuthError naming the environment variable to check, never retried."""
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            self.register(rsps, 401, self.auth_failure_body())
            with pytest.raises(AuthError, match="OKRSYNC_") as info:
                self.make(self.BASE_URL).fetch(*self.query())
            assert not info.value.retryable

    def test_rate_limit_with_retry_after(self) -> None:
        """429 with Retry-After is a RateLimitedError carrying the wait."""
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            self.register(rsps, 429, {"message": "rate limited"}, {"Retry-After": "7"})
            with pytest.raises(RateLimitedError) as info:
                self.make(self.BASE_URL).fetch(*self.query())
            assert info.value.retry_after == 7

    def test_server_error_then_success(self) -> None:
        """A 5xx is transient: the retry policy tries again and gets the value."""
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            self.register(rsps, 503, "Service Unavailable")
            self.register(rsps, 200, self.good_body())
            conn = self.make(self.BASE_URL)
            slept: list[float] = []
            reading = call_with_retry(lambda: conn.fetch(*self.query()), sleep=slept.append)
            assert reading.value == self.expected_value
            assert len(slept) >= 1

    def test_malformed_body(self) -> None:
        """A 200 whose body is not JSON is a clear, non-retryable error."""
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            self.register(rsps, 200, '{"status": "succ')
            with pytest.raises(FetchError) as info:
                self.make(self.BASE_URL).fetch(*self.query())
            assert not info.value.retryable

    def test_html_error_page(self) -> None:
        """A proxy's HTML 502 page is a transient error that says it was HTML."""
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            self.register(rsps, 502, HTML_PAGE, {"Content-Type": "text/html"})
            with pytest.raises(TransientFetchError, match="HTML"):
                self.make(self.BASE_URL).fetch(*self.query())

    def test_timeout(self) -> None:
        """A request that times out is a transient error that says so."""
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            self.register(rsps, 200, requests.ReadTimeout("read timed out"))
            with pytest.raises(TransientFetchError, match="timeout"):
                self.make(self.BASE_URL).fetch(*self.query())

    def test_connection_refused(self) -> None:
        """Nothing listening at the URL is a transient 'connection refused' error."""
        conn = self.make(f"http://127.0.0.1:{closed_port()}")
        with pytest.raises(TransientFetchError, match="refused"):
            conn.fetch(*self.query())
