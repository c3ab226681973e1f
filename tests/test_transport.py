"""The bounded transport under all four built-in connectors, against loopback fakes: one
deadline per request, a byte cap after decompression, a lost connection retried, and no
credentials on a cross-origin redirect."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from transport_fakes import (
    answer,
    drip_body,
    drip_headers,
    gzip_of_zeros,
    gzipped,
    redirect,
    reset_mid_body,
    serve,
    zeros,
)

from okrsync.connector import Connector, Reading
from okrsync.connectors._http import network_error, safe_url
from okrsync.connectors.github import GithubConnector, GithubQuery, GithubSource
from okrsync.connectors.http_json import HttpJsonConnector, HttpQuery, HttpSource
from okrsync.connectors.jira import JiraConnector, JiraQuery, JiraSource
from okrsync.connectors.prometheus import PrometheusConnector, PrometheusQuery, PrometheusSource
from okrsync.errors import FetchError, TransientFetchError
from okrsync.measure.retry import call_with_retry
from okrsync.testing import ask

SLACK = 0.8  # seconds past the deadline an attempt may take to end
SECRETS = {
    "OKRSYNC_PROM_TOKEN": "prom-bearer-SEKRET-0001",
    "OKRSYNC_HTTPSRC_HEADER_X_API_KEY": "x-api-key-SEKRET-0002",
    "OKRSYNC_HTTPSRC_HEADER_AUTHORIZATION": "Bearer http-SEKRET-0003",
    "OKRSYNC_JIRA_TOKEN": "jira-pat-SEKRET-0004",
    "OKRSYNC_GH_TOKEN": "ghp_SEKRET0005githubtoken",
}

Fetch = Callable[[], Reading]


def make(kind: str, base: str, **source: Any) -> tuple[Connector, Fetch]:
    """A connector of `kind` for the fake at `base`, and a one-attempt fetch of one KR."""
    conn: Connector
    if kind == "prometheus":
        conn = PrometheusConnector("prom", PrometheusSource(url=base, **source))
        query: Any = ask(PrometheusQuery, query="up")
    elif kind == "http":
        conn = HttpJsonConnector("httpsrc", HttpSource(url=base + "/api", **source))
        query = ask(HttpQuery, extract="value")
    elif kind == "jira":
        conn = JiraConnector("jira", JiraSource(url=base, deployment="datacenter", **source))
        query = ask(JiraQuery, jql="project = EX")
    else:
        conn = GithubConnector("gh", GithubSource(url=base + "/api/v3", **source))
        query = ask(GithubQuery, search="repo:acme/api is:pr")
    return conn, lambda: conn.fetch(*query)


KINDS = ["prometheus", "http", "jira", "github"]


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every connector holds a credential, so every test would show one leaking."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("script", [drip_body, drip_headers], ids=["body", "headers"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_dripping_answer_times_out_at_the_deadline(kind: str, script: Any) -> None:
    """A byte every 0.4 s never resets the clock: the attempt ends at `timeout` as a timeout."""
    with serve(script()) as fake:
        _, fetch = make(kind, fake.url, timeout=1)
        started = time.monotonic()
        with pytest.raises(TransientFetchError, match=r"no answer within 1s \(timeout\)"):
            fetch()
        assert time.monotonic() - started < 1 + SLACK


@pytest.mark.parametrize("kind", KINDS)
def test_an_answer_past_the_byte_cap_is_an_error_not_retried(kind: str) -> None:
    """5 MB against a 1 MB cap stops at the cap: a permanent error naming the setting."""
    with serve(zeros(5_000_000)) as fake:
        _, fetch = make(kind, fake.url, max_response_bytes=1_000_000)
        too_large = r"answer larger than 1 MB \(max_response_bytes\)"
        with pytest.raises(FetchError, match=too_large) as info:
            call_with_retry(fetch, sleep=lambda _: None)
        assert not info.value.retryable
        assert len(fake.seen) == 1


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """About 50 KB that inflate to 50 MB."""
    return gzip_of_zeros(50_000_000)


@pytest.mark.parametrize("kind", KINDS)
def test_a_gzip_bomb_is_counted_after_decompression(kind: str, bomb: bytes) -> None:
    """The cap counts decompressed bytes, so a small gzip body inflating past it is refused."""
    assert len(bomb) < 1_000_000
    with serve(gzipped(bomb)) as fake:
        _, fetch = make(kind, fake.url, max_response_bytes=1_000_000)
        with pytest.raises(FetchError, match=r"larger than 1 MB \(max_response_bytes\)"):
            fetch()


@pytest.mark.parametrize("kind", KINDS)
def test_a_connection_reset_mid_body_is_transient_and_retried(kind: str) -> None:
    """A reset while reading is retried like a refused connection (3 attempts), said plainly."""
    with serve(reset_mid_body()) as fake:
        _, fetch = make(kind, fake.url)
        with pytest.raises(TransientFetchError, match="connection lost while reading") as info:
            call_with_retry(fetch, sleep=lambda _: None)
        assert "Error" not in str(info.value)
        assert len(fake.seen) == 3


@pytest.mark.parametrize("kind", KINDS)
def test_a_cross_origin_redirect_carries_no_credentials(kind: str) -> None:
    """Redirected to another port, the second server receives none of the secrets."""
    good = {"status": "success", "data": {"resultType": "scalar", "result": [1, "1"]}}
    with serve(answer(good)) as second, serve(redirect(second.url)) as first:
        _, fetch = make(kind, first.url)
        with contextlib.suppress(FetchError):  # some refuse the redirect: only leaks matter
            fetch()
        assert first.seen, "the connector asked the first server"
        for seen in second.seen:
            sent = " ".join(f"{k}: {v}" for k, v in seen.headers.items())
            assert "SEKRET" not in sent
            assert "authorization" not in seen.headers
            assert "x-api-key" not in seen.headers


def test_basic_auth_is_not_sent_across_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Basic auth (Prometheus user and password) stays on the source's origin too."""
    monkeypatch.delenv("OKRSYNC_PROM_TOKEN")
    monkeypatch.setenv("OKRSYNC_PROM_USER", "admin")
    monkeypatch.setenv("OKRSYNC_PROM_PASSWORD", "hunter2-SEKRET")
    good = {"status": "success", "data": {"resultType": "scalar", "result": [1, "7"]}}
    with serve(answer(good)) as second, serve(redirect(second.url)) as first:
        _, fetch = make("prometheus", first.url)
        assert fetch().value == 7
        assert "authorization" in first.seen[0].headers
        assert second.seen and "authorization" not in second.seen[0].headers


def test_a_same_origin_redirect_keeps_credentials() -> None:
    """Following a redirect on the same origin still sends the credential."""
    good = {"status": "success", "data": {"resultType": "scalar", "result": [1, "3"]}}
    calls: list[int] = []

    def script(conn: Any, seen: Any) -> None:
        calls.append(1)
        (redirect(first.url + "/moved") if len(calls) == 1 else answer(good))(conn, seen)

    with serve(script) as first:
        _, fetch = make("prometheus", first.url)
        assert fetch().value == 3
        assert first.seen[1].headers["authorization"] == "Bearer " + SECRETS["OKRSYNC_PROM_TOKEN"]


def test_urls_in_messages_never_show_userinfo() -> None:
    """A `user:password@` in a source URL is dropped from every URL a message shows."""
    assert safe_url("http://admin:hunter2@host:9090/x?q=1") == "http://host:9090/x?q=1"
    assert safe_url("http://host:9090") == "http://host:9090"
    error = network_error(
        requests.ConnectionError("Connection refused"), "s", "http://admin:hunter2@h:1", 2
    )
    assert "hunter2" not in str(error) and "admin" not in str(error)
    assert "at http://h:1" in str(error)


def test_following_redirects_shares_the_one_deadline() -> None:
    """Each redirect hop is part of the same request: a slow chain ends at `timeout`."""

    def slow_redirect(conn: Any, seen: Any) -> None:
        time.sleep(0.4)
        redirect(fake.url + "/hop" + str(len(fake.seen)), 302)(conn, seen)

    with serve(slow_redirect, max_requests=40) as fake:
        _, fetch = make("prometheus", fake.url, timeout=1)
        started = time.monotonic()
        with pytest.raises(TransientFetchError, match=r"within 1s \(timeout\)"):
            fetch()
        assert time.monotonic() - started < 1 + SLACK


def test_endless_redirects_are_a_clear_error() -> None:
    """A redirect loop is a permanent error naming the url, not an unexpected exception."""
    error = network_error(requests.TooManyRedirects("Exceeded 30 redirects."), "s", "http://h", 2)
    assert isinstance(error, FetchError) and not error.retryable
    assert "too many redirects" in str(error)


def test_github_refuses_a_permanent_redirect_to_another_host() -> None:
    """PyGithub's own 301 check (another host) is a clear FetchError, and nothing is sent."""
    with serve(answer({"total_count": 1})) as second:
        elsewhere = second.url.replace("127.0.0.1", "localhost")
        with serve(redirect(elsewhere, 301)) as first:
            _, fetch = make("github", first.url)
            with pytest.raises(FetchError, match=r"redirected from host 127\.0\.0\.1 to localhost"):
                fetch()
        assert not second.seen
