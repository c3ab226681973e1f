"""Tests of the generic HTTP JSON connector: the shared contract, extraction, secret headers."""

from __future__ import annotations

import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import responses
from responses import matchers

from okrsync.connector import Window
from okrsync.connectors.http_json import (
    HttpJsonConnector,
    HttpQuery,
    HttpSource,
    header_name,
    secret_headers,
    to_number,
)
from okrsync.errors import AuthError, FetchError, TransientFetchError
from okrsync.secrets import remember
from okrsync.testing import Ask, ConnectorContract, add_answer, ask, json_fixtures

FIXTURES = Path(__file__).parent / "fixtures" / "http"
SUMMARY = "/api/v2/summary.json"
SINCE = datetime(2026, 10, 1, tzinfo=UTC)
UNTIL = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)

load = json_fixtures(FIXTURES)


def query(**fields: Any) -> Ask[HttpQuery]:
    return ask(HttpQuery, Window(SINCE, UNTIL), **fields)


add = add_answer


def make(url: str = "http://127.0.0.1:9" + SUMMARY, **kw: Any) -> HttpJsonConnector:
    return HttpJsonConnector("statusboard", HttpSource(type="http", url=url, **kw))


class TestHttpContract(ConnectorContract):
    """The shared contract against a Statuspage-shaped summary endpoint."""

    expected_value = 99.93
    empty_expectation = FetchError
    ENDPOINT = ("GET", SUMMARY)

    def make(self, base_url: str) -> HttpJsonConnector:
        return make(base_url + SUMMARY)

    def query(self) -> Ask[HttpQuery]:
        return query(extract="components[?name=='API'].uptime | [0]")

    def good_body(self) -> Any:
        return load("statuspage_summary.json")

    def empty_body(self) -> Any:
        return load("statuspage_summary_empty.json")

    def auth_failure_body(self) -> Any:
        return load("unauthorized_401.json")


@responses.activate
def test_post_appends_path_and_sends_json_body() -> None:
    """A POST KR sends its body as JSON to the source URL plus the KR's path."""
    responses.add(
        "POST",
        "https://api.example.com/v1/query",
        json=load("timeseries_query.json"),
        match=[matchers.json_params_matcher({"q": "max:queue.age{*}"})],
    )
    conn = make("https://api.example.com/")
    reading = conn.fetch(
        *query(
            path="/v1/query",
            method="post",
            body={"q": "max:queue.age{*}"},
            extract="series[0].pointlist[-1][1]",
        )
    )
    assert reading.value == 12.25
    assert conn.requests == 1


@responses.activate
def test_numeric_string_is_accepted() -> None:
    """A number sent as a string (common in JSON APIs) is read as that number."""
    responses.add("GET", "https://s.example.com/x", json=load("statuspage_summary.json"))
    conn = make("https://s.example.com/x")
    extract = "components[?name=='Webhooks'].uptime | [0]"
    reading = conn.fetch(*query(extract=extract))
    assert reading.value == 99.51
    assert reading.answer == {
        "extract": extract,
        "url": "https://s.example.com/x",
        "value": "99.51",
    }


@pytest.mark.parametrize(
    ("extract", "message"),
    [
        ("as_text", "string 'high'"),
        ("missing_key", "nothing"),
        ("as_list", "a list"),
        ("as_bool", "a boolean"),
        ("nested", "an object"),
        ("as_nan", "not a finite number"),
    ],
)
@responses.activate
def test_extract_must_give_one_number(extract: str, message: str) -> None:
    """Anything but one finite number is a clear error that retrying will not fix."""
    responses.add("GET", "https://s.example.com/x", json=load("scalars.json"))
    with pytest.raises(FetchError, match=message) as info:
        make("https://s.example.com/x").fetch(*query(extract=extract))
    assert not info.value.retryable
    assert extract in str(info.value)


def test_header_names_from_env_suffix() -> None:
    """`_` becomes `-` and each word is title-cased."""
    assert header_name("AUTHORIZATION") == "Authorization"
    assert header_name("X_API_KEY") == "X-Api-Key"


def test_secret_headers_from_env_and_file(tmp_path: Path) -> None:
    """Header secrets come from OKRSYNC_<NAME>_HEADER_* and their *_FILE variants."""
    secret = tmp_path / "key"
    secret.write_text("file-key-123\n")
    env = {
        "OKRSYNC_STATUSBOARD_HEADER_AUTHORIZATION": "Bearer abc123",
        "OKRSYNC_STATUSBOARD_HEADER_X_API_KEY_FILE": str(secret),
        "OKRSYNC_OTHER_HEADER_X_NOPE": "nope",
    }
    assert secret_headers("statusboard", env) == {
        "Authorization": "Bearer abc123",
        "X-Api-Key": "file-key-123",
    }


def test_unreadable_header_file_is_an_auth_error(tmp_path: Path) -> None:
    """A *_FILE pointing nowhere says which variable and file are wrong."""
    env = {"OKRSYNC_STATUSBOARD_HEADER_X_API_KEY_FILE": str(tmp_path / "missing")}
    with pytest.raises(AuthError, match="OKRSYNC_STATUSBOARD_HEADER_X_API_KEY_FILE"):
        secret_headers("statusboard", env)


@responses.activate
def test_headers_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """Config headers and secret env headers are both sent."""
    monkeypatch.setenv("OKRSYNC_STATUSBOARD_HEADER_X_API_KEY", "k-secret-42")
    responses.add(
        "GET",
        "https://s.example.com/x",
        json={"v": 3},
        match=[matchers.header_matcher({"X-Api-Key": "k-secret-42", "X-Team": "sre"})],
    )
    assert (
        make("https://s.example.com/x", headers={"X-Team": "sre"}).fetch(*query(extract="v")).value
        == 3
    )


@responses.activate
def test_secret_never_in_error_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server echoing our secret header back in a 500 body does not leak it."""
    monkeypatch.setenv("OKRSYNC_STATUSBOARD_HEADER_AUTHORIZATION", "Bearer tok-SECRET-9f8e")
    responses.add(
        "GET",
        "https://s.example.com/x",
        status=500,
        body='{"error": "bad header Authorization: Bearer tok-SECRET-9f8e"}',
    )
    with pytest.raises(TransientFetchError) as info:
        make("https://s.example.com/x").fetch(*query(extract="v"))
    text = "".join(traceback.format_exception(info.value))
    assert "tok-SECRET-9f8e" not in text
    assert "***" in str(info.value)


@responses.activate
def test_not_found_is_not_retryable() -> None:
    """A 404 is a configuration problem: a clear, permanent error."""
    responses.add("GET", "https://s.example.com/x", status=404, body="Not Found")
    with pytest.raises(FetchError, match="404") as info:
        make("https://s.example.com/x").fetch(*query(extract="v"))
    assert not info.value.retryable


@responses.activate
def test_html_login_page_with_200() -> None:
    """A login wall answering 200 with HTML is reported as HTML, not as bad JSON."""
    responses.add(
        "GET",
        "https://s.example.com/x",
        body="<html><body>Sign in</body></html>",
        content_type="text/html",
    )
    with pytest.raises(FetchError, match="HTML"):
        make("https://s.example.com/x").fetch(*query(extract="v"))


def test_network_errors_are_named_and_tls_is_not_retried() -> None:
    """Refused and DNS failures are transient and named; a certificate error is permanent."""
    import requests

    from okrsync.connectors._http import network_error
    from okrsync.errors import TransientFetchError

    refused = requests.ConnectionError("[Errno 111] Connection refused")
    dns = requests.ConnectionError("Failed to resolve: [Errno -2] Name or service not known")
    tls = requests.exceptions.SSLError("certificate verify failed")
    assert isinstance(network_error(refused, "s", "http://x", 1), TransientFetchError)
    assert "cannot resolve the host name" in str(network_error(dns, "s", "http://x", 1))
    error = network_error(tls, "s", "https://x", 1)
    assert not error.retryable and "certificate" in str(error)


def test_a_secret_in_a_shown_value_is_redacted_before_it_is_cut() -> None:
    """A token crossing the 80-character cut of a shown value is masked, not half shown."""
    secret = "SEKRET1-crossing-the-cut-0042"
    remember(secret)
    for value in ("x" * 70 + " Bearer " + secret, ["y" * 66 + " Bearer " + secret]):
        with pytest.raises(FetchError) as info:
            to_number(value, "src: extract 'a'")
        assert "SEKRET" not in str(info.value)
        assert "***" in str(info.value) or "**" in str(info.value)
