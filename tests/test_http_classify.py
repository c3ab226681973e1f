"""The one HTTP classifier every connector uses: status, headers and body -> okrsync error."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
import requests

from okrsync.connectors._http import (
    SECONDARY_LIMIT_WAIT,
    classify,
    is_html,
    network_error,
    retry_after,
)
from okrsync.connectors._transport import ConnectionLost, ResponseTooLarge
from okrsync.errors import AuthError, FetchError, RateLimitedError, TransientFetchError
from okrsync.secrets import remember

NOW = 1_790_000_000.0


def clock() -> float:
    return NOW


def test_success_is_no_error() -> None:
    """Any status below 400 is not an error."""
    assert classify("s", 200, {}, "{}", auth_hint="X") is None
    assert classify("s", 304, {}, "", auth_hint="X") is None


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    """Retry-After is read as seconds or as an HTTP date, case-insensitively."""
    assert retry_after({"retry-after": "7"}) == 7
    when = format_datetime(datetime.fromtimestamp(NOW + 90, UTC), usegmt=True)
    assert retry_after({"Retry-After": when}, clock) == pytest.approx(90)
    assert retry_after({"Retry-After": "soon"}) is None


def test_rate_limit_reset_header_gives_the_wait() -> None:
    """No requests left until x-ratelimit-reset is a wait until then."""
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW + 1200))}
    assert retry_after(headers, clock) == pytest.approx(1200)
    assert retry_after({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "1"}, clock) is None


@pytest.mark.parametrize(
    ("status", "headers", "body", "kind", "wait"),
    [
        (429, {"Retry-After": "3"}, "slow down", RateLimitedError, 3),
        (429, {}, "slow down", RateLimitedError, None),
        (403, {"Retry-After": "5"}, "{}", RateLimitedError, 5),
        (403, {}, "You have exceeded a secondary rate limit", RateLimitedError, 60),
        (403, {}, "Forbidden", AuthError, None),
        (401, {}, "{}", AuthError, None),
        (503, {"Retry-After": "2"}, "down", TransientFetchError, 2),
        (404, {}, "no such thing", FetchError, None),
    ],
)
def test_statuses_are_sorted_by_what_the_runner_should_do(
    status: int, headers: dict[str, str], body: str, kind: type[FetchError], wait: float | None
) -> None:
    """Rate limits carry their wait, auth failures name the env, 5xx retry, 4xx do not."""
    error = classify("src", status, headers, body, auth_hint="OKRSYNC_SRC_TOKEN", clock=clock)
    assert error is not None and type(error) is kind
    assert error.retryable == (kind in (RateLimitedError, TransientFetchError))
    if isinstance(error, TransientFetchError):
        assert error.retry_after == wait
    if kind is AuthError:
        assert "OKRSYNC_SRC_TOKEN" in str(error)
    assert SECONDARY_LIMIT_WAIT == 60


def test_html_pages_are_named_not_dumped() -> None:
    """A proxy's HTML page is called one, on a 5xx and a 4xx alike."""
    page = "<!DOCTYPE html><html><body>502 Bad Gateway</body></html>"
    assert is_html({}, page) and is_html({"content-type": "text/html"}, "")
    error = classify("src", 502, {}, page, auth_hint="X")
    assert isinstance(error, TransientFetchError) and "HTML error page" in str(error)
    error = classify("src", 400, {}, page, auth_hint="X", hints={400: "bad query"})
    assert "HTML page instead of JSON" in str(error) and "<html" not in str(error)


def test_hints_and_where_shape_the_4xx_message() -> None:
    """A connector's advice for a status wins; otherwise the message says what was asked."""
    error = classify("jira", 404, {}, "{}", auth_hint="X", hints={404: "is `url` right?"})
    assert str(error) == "jira: is `url` right?"
    error = classify("gh", 422, {}, "", auth_hint="X", message="Validation Failed", where="/s")
    assert str(error) == "gh: HTTP 422 for /s: Validation Failed"


def test_secrets_are_redacted_before_the_text_is_cut() -> None:
    """A token that crosses the cut-off point never shows, not even its first characters."""
    token = "SEKRET1-abcdefghijklmnopqrstuvwxyz"
    remember(token)
    body = "x" * 190 + " Bearer " + token
    error = classify("src", 400, {}, body, auth_hint="X")
    assert "SEKRET1" not in str(error)


def test_a_connection_lost_mid_answer_is_transient_and_said_plainly() -> None:
    """A reset or truncated chunked body is retryable, and the message names no exception."""
    for exc in (
        requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead"),
        ConnectionLost("Connection reset by peer"),
    ):
        error = network_error(exc, "s", "http://u:pw-SEKRET@h:1/x", 2)
        assert isinstance(error, TransientFetchError)
        assert "connection lost while reading the answer from http://h:1/x" in str(error)
        assert "Error" not in str(error) and "SEKRET" not in str(error)


def test_an_answer_past_the_cap_is_permanent_and_names_the_setting() -> None:
    """ResponseTooLarge is a plain FetchError naming `max_response_bytes`."""
    error = network_error(ResponseTooLarge("answer larger than 10 MB"), "s", "http://h", 2)
    assert type(error) is FetchError
    assert "s: answer larger than 10 MB (max_response_bytes)" in str(error)
