"""Tests of the GitHub connector: contract, metrics, limits, ETags, real PyGithub on loopback."""

from __future__ import annotations

import json
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import responses
from pytest_httpserver import HTTPServer
from responses import matchers
from werkzeug import Request, Response

from okrsync.connector import Window
from okrsync.connectors import github as github_module
from okrsync.connectors._ratelimit import RateLimiter
from okrsync.connectors.github import GithubConnector, GithubQuery, GithubSource
from okrsync.errors import AuthError, FetchError, RateLimitedError, TransientFetchError
from okrsync.testing import Ask, ConnectorContract, add_answer, ask, json_fixtures

FIXTURES = Path(__file__).parent / "fixtures" / "github"
SINCE = datetime(2026, 10, 1, tzinfo=UTC)
UNTIL = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
API = "http://127.0.0.1:9/api/v3"
SEARCH = "repo:acme/api is:pr is:merged merged:>=2026-10-01"
TOKEN = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"
NOW = 1_790_000_000.0

load = json_fixtures(FIXTURES)


def query(**fields: Any) -> Ask[GithubQuery]:
    return ask(GithubQuery, Window(SINCE, UNTIL), **fields)


class FakeClock:
    """Wall-clock stand-in: sleeping moves time forward instantly."""

    def __init__(self) -> None:
        self.now = NOW
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def make(
    url: str | None = "http://127.0.0.1:9/api/v3", clock: FakeClock | None = None, name: str = "gh"
) -> GithubConnector:
    clock = clock or FakeClock()
    return GithubConnector(
        name, GithubSource(type="github", url=url, timeout=2), clock=clock.time, sleep=clock.sleep
    )


def add(
    rsps: responses.RequestsMock,
    url: str,
    status: int,
    body: Any,
    headers: dict[str, str] | None = None,
    **kw: Any,
) -> None:
    add_answer(rsps, "GET", url, status, body, headers, **kw)


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OKRSYNC_GH_TOKEN", TOKEN)
    return TOKEN


class TestGithubContract(ConnectorContract):
    """The shared contract on /search/issues counts (GitHub Enterprise-style base URL)."""

    expected_value = 29512
    empty_expectation = 0
    ENDPOINT = ("GET", "/api/v3/search/issues")

    @pytest.fixture(autouse=True)
    def _env(self, token: str) -> None:
        """Authenticated, as most deployments are."""

    def make(self, base_url: str) -> GithubConnector:
        return make(base_url + "/api/v3")

    def query(self) -> Ask[GithubQuery]:
        return query(search=SEARCH)

    def good_body(self) -> Any:
        return load("search_issues_count.json")

    def empty_body(self) -> Any:
        return load("search_issues_empty.json")

    def auth_failure_body(self) -> Any:
        return load("error_401.json")


# --- counts and metrics (responses) -------------------------------------------------------


@responses.activate
def test_search_count_is_raw_total_count_in_one_request() -> None:
    """29,512 matches (beyond PyGithub's 1000 cap) cost one request with per_page=1."""
    responses.add(
        "GET",
        API + "/search/issues",
        json=load("search_issues_count.json"),
        match=[matchers.query_param_matcher({"q": SEARCH, "per_page": "1"})],
    )
    conn = make()
    reading = conn.fetch(*query(search=SEARCH))
    assert reading.value == 29512 and reading.note is None
    assert reading.answer == {"total_count": 29512}  # the raw answer explain shows
    assert conn.requests == 1


@responses.activate
def test_incomplete_search_is_noted() -> None:
    """When GitHub's search timed out, the reading says the count may be low."""
    add(responses.mock, API + "/search/issues", 200, load("search_issues_count_incomplete.json"))
    assert "may be low" in str(make().fetch(*query(search=SEARCH)).note)


@responses.activate
def test_default_api_needs_port_443_and_works_unauthenticated() -> None:
    """No url means api.github.com; without a token no Authorization header is sent."""
    responses.add("GET", "https://api.github.com:443/repos/acme/api", json=load("repo.json"))
    conn = make(url=None)
    assert conn.fetch(*query(repo="acme/api", metric="open_issues")).value == 42
    assert "Authorization" not in responses.calls[0].request.headers


@responses.activate
def test_workflow_success_rate() -> None:
    """100 * success / (success + failure) over completed runs on the branch in the window."""
    responses.add(
        "GET",
        API + "/repos/acme/api/actions/workflows/ci.yml/runs",
        json=load("workflow_runs.json"),
        match=[
            matchers.query_param_matcher(
                {
                    "status": "completed",
                    "branch": "main",
                    "per_page": "100",
                    "page": "1",
                    "created": "2026-10-01T00:00:00Z..2026-12-31T23:59:59Z",
                }
            )
        ],
    )
    reading = make().fetch(
        *query(repo="acme/api", metric="workflow_success_rate", workflow="ci.yml", branch="main")
    )
    assert reading.value == 75.0 and reading.note is None


@responses.activate
def test_workflow_runs_are_paged(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs are read page by page until total_count."""
    monkeypatch.setattr(github_module, "PAGE", 4)
    url = API + "/repos/acme/api/actions/workflows/ci.yml/runs"
    add(
        responses.mock,
        url,
        200,
        load("workflow_runs_page1.json"),
        match=[matchers.query_param_matcher({"page": "1"}, strict_match=False)],
    )
    add(
        responses.mock,
        url,
        200,
        load("workflow_runs_page2.json"),
        match=[matchers.query_param_matcher({"page": "2"}, strict_match=False)],
    )
    conn = make()
    reading = conn.fetch(
        *query(repo="acme/api", metric="workflow_success_rate", workflow="ci.yml", branch="main")
    )
    assert reading.value == 80.0
    assert conn.requests == 2


@responses.activate
def test_workflow_runs_beyond_the_cap_are_noted(monkeypatch: pytest.MonkeyPatch) -> None:
    """GitHub lists at most 1000 filtered runs; the reading says so."""
    monkeypatch.setattr(github_module, "PAGE", 4)
    monkeypatch.setattr(github_module, "SEARCH_CAP", 8)
    add(
        responses.mock, API + "/repos/acme/api/actions/runs", 200, load("workflow_runs_capped.json")
    )
    reading = make().fetch(*query(repo="acme/api", metric="workflow_success_rate"))
    assert reading.note == "over the newest 8 of 2500 runs"


@pytest.mark.parametrize(
    "fixture", ["workflow_runs_none_decisive.json", "workflow_runs_empty.json"]
)
@responses.activate
def test_no_decisive_runs_is_a_clear_error(fixture: str) -> None:
    """Only cancelled/skipped runs, or none at all, cannot give a rate."""
    add(responses.mock, API + "/repos/acme/api/actions/workflows/ci.yml/runs", 200, load(fixture))
    with pytest.raises(FetchError, match=r"no successful or failed runs of ci\.yml on main"):
        make().fetch(
            *query(
                repo="acme/api", metric="workflow_success_rate", workflow="ci.yml", branch="main"
            )
        )


@responses.activate
def test_releases_published_in_window() -> None:
    """Published, non-draft releases with published_at in [since, until] are counted."""
    add(responses.mock, API + "/repos/acme/api/releases", 200, load("releases.json"))
    assert make().fetch(*query(repo="acme/api", metric="releases")).value == 3


@responses.activate
def test_median_merge_hours_notes_the_cap() -> None:
    """Median of created->merged hours; merged_at (or closed_at in older answers) is used."""
    responses.add(
        "GET",
        API + "/search/issues",
        json=load("search_merged_prs.json"),
        match=[
            matchers.query_param_matcher(
                {"q": SEARCH, "sort": "created", "order": "desc", "per_page": "100", "page": "1"}
            )
        ],
    )
    reading = make().fetch(*query(search=SEARCH, metric="median_merge_hours"))
    assert reading.value == 7.0
    assert reading.note == "median over the newest 1000 of 1500 matching pull requests"


@responses.activate
def test_median_without_merged_prs_is_an_error() -> None:
    """No merged pull requests: a clear error, not 0."""
    add(responses.mock, API + "/search/issues", 200, load("search_issues_empty.json"))
    with pytest.raises(FetchError, match="no merged pull requests"):
        make().fetch(*query(search=SEARCH, metric="median_merge_hours"))


# --- conditional requests ---------------------------------------------------------------


@responses.activate
def test_etag_is_sent_and_304_reuses_the_answer() -> None:
    """The second read of a repo sends If-None-Match; its 304 reuses the cached JSON."""
    etag = '"8600bedcb7fed1d8065e1693e05529ce"'
    url = API + "/repos/acme/api"
    responses.add("GET", url, json=load("repo.json"), headers={"ETag": etag})
    responses.add(
        "GET",
        url,
        status=304,
        body="",
        headers={"ETag": etag},
        match=[matchers.header_matcher({"If-None-Match": etag})],
    )
    conn = make()
    assert conn.fetch(*query(repo="acme/api", metric="open_issues")).value == 42
    assert conn.fetch(*query(repo="acme/api", metric="open_issues")).value == 42
    assert (conn.requests, conn.not_modified) == (2, 1)


@responses.activate
def test_search_is_not_conditional() -> None:
    """Search answers are not cached: no If-None-Match is sent."""
    for _ in range(2):
        add(
            responses.mock,
            API + "/search/issues",
            200,
            load("search_issues_count.json"),
            headers={"ETag": '"abc"'},
        )
    conn = make()
    conn.fetch(*query(search=SEARCH))
    conn.fetch(*query(search=SEARCH))
    assert all("If-None-Match" not in c.request.headers for c in responses.calls)


# --- rate limits --------------------------------------------------------------------------


def test_limiter_keeps_under_the_window() -> None:
    """The 31st search within a minute waits for the oldest one to leave the window."""
    clock = FakeClock()
    limiter = RateLimiter("gh search", 30, clock=clock.time, sleep=clock.sleep)
    for _ in range(30):
        limiter.acquire()
        clock.now += 0.5
    assert clock.slept == []
    limiter.acquire()
    assert clock.slept == [pytest.approx(45.0)]


@responses.activate
def test_search_limiter_per_connector(token: str) -> None:
    """31 searches with a token: one wait, done on the injected clock (no real sleep)."""
    add(responses.mock, API + "/search/issues", 200, load("search_issues_count.json"))
    clock = FakeClock()
    conn = make(clock=clock)
    for _ in range(31):
        conn.fetch(*query(search=SEARCH))
    assert len(clock.slept) == 1 and clock.slept[0] == pytest.approx(60.0)


@responses.activate
def test_unauthenticated_search_budget_is_10_per_minute() -> None:
    """Without a token GitHub allows 10 searches a minute, and so do we."""
    add(responses.mock, API + "/search/issues", 200, load("search_issues_count.json"))
    clock = FakeClock()
    conn = make(clock=clock)
    for _ in range(11):
        conn.fetch(*query(search=SEARCH))
    assert len(clock.slept) == 1


@responses.activate
def test_primary_limit_exhausted_waits_for_a_near_reset() -> None:
    """x-ratelimit-remaining: 0 with a reset 20 s away: the next request waits 20 s first."""
    headers = {
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(int(NOW + 20)),
        "X-RateLimit-Resource": "core",
        "ETag": '"e1"',
    }
    add(responses.mock, API + "/repos/acme/api", 200, load("repo.json"), headers=headers)
    clock = FakeClock()
    conn = make(clock=clock)
    conn.fetch(*query(repo="acme/api", metric="open_issues"))
    conn.fetch(*query(repo="acme/api", metric="open_issues"))
    assert clock.slept == [pytest.approx(20.0)]


@responses.activate
def test_primary_limit_exhausted_far_reset_raises_without_a_request() -> None:
    """A reset an hour away is the retry policy's call: RateLimitedError, nothing sent."""
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW + 3000))}
    add(responses.mock, API + "/repos/acme/api", 200, load("repo.json"), headers=headers)
    conn = make()
    conn.fetch(*query(repo="acme/api", metric="open_issues"))
    with pytest.raises(RateLimitedError) as info:
        conn.fetch(*query(repo="acme/api", metric="open_issues"))
    assert info.value.retry_after == pytest.approx(3000)
    assert len(responses.calls) == 1


@responses.activate
def test_403_with_remaining_zero_is_rate_limited() -> None:
    """GitHub's 403 'API rate limit exceeded' carries the wait until x-ratelimit-reset."""
    headers = {
        "x-ratelimit-remaining": "0",
        "x-ratelimit-limit": "60",
        "x-ratelimit-reset": str(int(NOW + 1200)),
    }
    add(responses.mock, API + "/search/issues", 403, load("rate_limit_403.json"), headers)
    with pytest.raises(RateLimitedError) as info:
        make().fetch(*query(search=SEARCH))
    assert info.value.retry_after == pytest.approx(1200)


@responses.activate
def test_secondary_limit_without_headers_waits_a_minute() -> None:
    """A secondary-limit 403 without Retry-After asks for GitHub's advised minute."""
    add(responses.mock, API + "/search/issues", 403, load("secondary_rate_limit_403.json"))
    with pytest.raises(RateLimitedError) as info:
        make().fetch(*query(search=SEARCH))
    assert info.value.retry_after == 60


@responses.activate
def test_plain_403_is_an_auth_error(token: str) -> None:
    """A 403 that is not a rate limit means the token lacks access."""
    add(responses.mock, API + "/repos/acme/api/releases", 403, load("forbidden_403.json"))
    with pytest.raises(AuthError, match="OKRSYNC_GH_TOKEN"):
        make().fetch(*query(repo="acme/api", metric="releases"))


@responses.activate
def test_invalid_search_shows_githubs_message() -> None:
    """A 422 shows GitHub's validation message and is not retried."""
    add(responses.mock, API + "/search/issues", 422, load("search_validation_422.json"))
    with pytest.raises(FetchError, match="cannot be searched") as info:
        make().fetch(*query(search="repo:acme/nope"))
    assert not info.value.retryable


@responses.activate
def test_not_found_suggests_a_token_when_unauthenticated() -> None:
    """A 404 without a token may be a private repo: say which variable to set."""
    add(responses.mock, API + "/repos/acme/secret", 404, load("not_found_404.json"))
    with pytest.raises(FetchError, match=r"not found.*OKRSYNC_GH_TOKEN") as info:
        make().fetch(*query(repo="acme/secret", metric="open_issues"))
    assert not info.value.retryable


@pytest.mark.parametrize("status", [401, 403, 422, 500])
@responses.activate
def test_token_never_in_error_messages(token: str, status: int) -> None:
    """A server echoing our token back does not get it into messages or tracebacks."""
    add(responses.mock, API + "/search/issues", status, {"message": f"bad token {token}"})
    with pytest.raises(FetchError) as info:
        make().fetch(*query(search=SEARCH))
    assert token not in "".join(traceback.format_exception(info.value))


# --- the real PyGithub client against a loopback fake GitHub Enterprise -----------------


def test_pygithub_search_count_on_loopback(httpserver: HTTPServer, token: str) -> None:
    """PyGithub builds /api/v3/search/issues?q=..&per_page=1 with our token."""
    httpserver.expect_request(
        "/api/v3/search/issues",
        query_string={"q": SEARCH, "per_page": "1"},
        headers={"Authorization": f"token {TOKEN}"},
    ).respond_with_json(load("search_issues_count.json"))
    conn = make(httpserver.url_for("/api/v3"))
    assert conn.fetch(*query(search=SEARCH)).value == 29512
    assert len(httpserver.log) == 1


def test_enterprise_host_gets_api_v3(httpserver: HTTPServer) -> None:
    """A bare Enterprise host URL is completed with /api/v3."""
    httpserver.expect_request("/api/v3/repos/acme/api").respond_with_json(load("repo.json"))
    conn = make(httpserver.url_for("/").rstrip("/"))
    assert conn.fetch(*query(repo="acme/api", metric="open_issues")).value == 42


def _conditional(request: Request) -> Response:
    """A server that honours If-None-Match, as GitHub does."""
    etag = '"8600bedcb7fed1d8065e1693e05529ce"'
    if request.headers.get("If-None-Match") == etag:
        return Response(status=304, headers={"ETag": etag, "X-RateLimit-Remaining": "4988"})
    return Response(
        json.dumps(load("releases.json")),
        status=200,
        content_type="application/json",
        headers={"ETag": etag, "X-RateLimit-Remaining": "4989"},
    )


def test_pygithub_conditional_request_on_loopback(httpserver: HTTPServer) -> None:
    """A real 304 through PyGithub is counted in not_modified and reuses the answer."""
    httpserver.expect_request("/api/v3/repos/acme/api/releases").respond_with_handler(_conditional)
    conn = make(httpserver.url_for("/api/v3"))
    assert conn.fetch(*query(repo="acme/api", metric="releases")).value == 3
    assert conn.fetch(*query(repo="acme/api", metric="releases")).value == 3
    assert (conn.requests, conn.not_modified) == (2, 1)
    assert httpserver.log[1][0].headers["If-None-Match"] == '"8600bedcb7fed1d8065e1693e05529ce"'


@pytest.mark.parametrize("status", [500, 502])
def test_pygithub_does_not_retry(httpserver: HTTPServer, status: int) -> None:
    """With retry=None PyGithub sends once; the transient error is ours to retry."""
    httpserver.expect_request("/api/v3/search/issues").respond_with_json(
        {"error": "Server Error"}, status
    )
    with pytest.raises(TransientFetchError, match=str(status)):
        make(httpserver.url_for("/api/v3")).fetch(*query(search=SEARCH))
    assert len(httpserver.log) == 1


def test_pygithub_rate_limit_403_on_loopback(httpserver: HTTPServer) -> None:
    """The recorded 403 'API Rate Limit Exceeded' shape becomes RateLimitedError."""
    httpserver.expect_request("/api/v3/repos/acme/api").respond_with_json(
        {"message": "API Rate Limit Exceeded for 92.104.200.119"},
        403,
        headers={
            "x-ratelimit-remaining": "0",
            "x-ratelimit-limit": "60",
            "x-ratelimit-reset": str(int(NOW + 90)),
        },
    )
    with pytest.raises(RateLimitedError) as info:
        make(httpserver.url_for("/api/v3")).fetch(*query(repo="acme/api", metric="open_issues"))
    assert info.value.retry_after == pytest.approx(90)
    assert len(httpserver.log) == 1


@pytest.mark.parametrize("bad", [-5, -1, True, 2.5, "7"])
def test_a_count_below_zero_or_not_whole_is_an_error(bad: Any) -> None:
    """A `total_count` below 0 (or not an integer; a bool is not one) is never stored."""
    with responses.RequestsMock() as rsps:
        add(rsps, f"{API}/search/issues", 200, {"total_count": bad, "items": []})
        with pytest.raises(FetchError, match="total_count") as info:
            make().fetch(*query(search=SEARCH))
    assert not info.value.retryable
