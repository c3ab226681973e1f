"""Tests of the Jira connector: the shared contract, and the real `jira` client on loopback."""

from __future__ import annotations

import base64
import json
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import responses
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from okrsync.connector import Window
from okrsync.connectors.jira import JiraConnector, JiraQuery, JiraSource
from okrsync.errors import AuthError, FetchError, RateLimitedError, TransientFetchError
from okrsync.testing import Ask, ConnectorContract, add_answer, ask, json_fixtures

FIXTURES = Path(__file__).parent / "fixtures" / "jira"
SINCE = datetime(2026, 10, 1, tzinfo=UTC)
UNTIL = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
JQL = "project = EX AND resolved >= 2026-10-01"
COUNT_CLOUD = "/rest/api/3/search/approximate-count"
SEARCH_DC = "/rest/api/2/search"
SEARCH_CLOUD = "/rest/api/3/search/jql"
EMAIL, CLOUD_TOKEN, PAT = "ana@acme.example", "ATATT3xFfGF0-cloud-secret", "NjQ0-dc-pat-secret"

load = json_fixtures(FIXTURES)


def query(**fields: Any) -> Ask[JiraQuery]:
    return ask(JiraQuery, Window(SINCE, UNTIL), **{"jql": JQL, **fields})


def make(url: str, deployment: str | None, name: str = "jira") -> JiraConnector:
    return JiraConnector(name, JiraSource(type="jira", url=url, deployment=deployment, timeout=2))


add = add_answer


@pytest.fixture
def cloud_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKRSYNC_JIRA_USER", EMAIL)
    monkeypatch.setenv("OKRSYNC_JIRA_TOKEN", CLOUD_TOKEN)


@pytest.fixture
def dc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKRSYNC_JIRA_DC_TOKEN", PAT)


class TestJiraCloudContract(ConnectorContract):
    """The shared contract on Jira Cloud's approximate-count endpoint."""

    expected_value = 153
    empty_expectation = 0
    ENDPOINT = ("POST", COUNT_CLOUD)

    @pytest.fixture(autouse=True)
    def _env(self, cloud_env: None) -> None:
        """Cloud needs an email and an API token."""

    def make(self, base_url: str) -> JiraConnector:
        return make(base_url, "cloud")

    def query(self) -> Ask[JiraQuery]:
        return query()

    def good_body(self) -> Any:
        return load("cloud_approximate_count.json")

    def empty_body(self) -> Any:
        return load("cloud_approximate_count_zero.json")

    def auth_failure_body(self) -> Any:
        return load("error_401.json")


class TestJiraDataCenterContract(TestJiraCloudContract):
    """The shared contract on Data Center's search with maxResults=0."""

    ENDPOINT = ("GET", SEARCH_DC)

    @pytest.fixture(autouse=True)
    def _env(self, dc_env: None) -> None:
        """Data Center uses a personal access token."""

    def make(self, base_url: str) -> JiraConnector:
        return make(base_url, "datacenter", "jira-dc")

    def good_body(self) -> Any:
        return load("dc_search_count.json")

    def empty_body(self) -> Any:
        return load("dc_search_count_zero.json")


# --- the real `jira` client against a loopback fake Jira --------------------------------


def basic(user: str, token: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()


@pytest.mark.usefixtures("cloud_env")
def test_cloud_count_costs_one_request(httpserver: HTTPServer) -> None:
    """Counting 50,000 issues on Cloud is one POST to approximate-count, never paging."""
    httpserver.expect_request(
        COUNT_CLOUD,
        method="POST",
        json={"jql": JQL},
        headers={"Authorization": basic(EMAIL, CLOUD_TOKEN)},
    ).respond_with_json(load("cloud_approximate_count_50000.json"))
    conn = make(httpserver.url_for("/"), "cloud")
    reading = conn.fetch(*query())
    assert reading.value == 50000
    assert reading.note is not None and "approximate" in reading.note
    assert reading.answer == {"count": 50000}  # the raw answer explain shows
    assert conn.requests == 1
    assert len(httpserver.log) == 1


@pytest.mark.usefixtures("dc_env")
def test_datacenter_count_costs_one_request(httpserver: HTTPServer) -> None:
    """Counting 50,000 issues on Data Center is one search with maxResults=0."""
    httpserver.expect_request(
        SEARCH_DC,
        method="GET",
        query_string={"jql": JQL, "maxResults": "0", "fields": "id"},
        headers={"Authorization": f"Bearer {PAT}"},
    ).respond_with_json(load("dc_search_count_50000.json"))
    conn = make(httpserver.url_for("/"), "datacenter", "jira-dc")
    reading = conn.fetch(*query())
    assert reading.value == 50000 and reading.answer == {"total": 50000}
    assert conn.requests == 1
    assert len(httpserver.log) == 1


@pytest.mark.parametrize(
    ("info", "path", "method", "body", "env"),
    [
        (
            "server_info_cloud.json",
            COUNT_CLOUD,
            "POST",
            "cloud_approximate_count.json",
            "cloud_env",
        ),
        ("server_info_dc.json", SEARCH_DC, "GET", "dc_search_count.json", "cloud_env"),
    ],
)
def test_deployment_detected_once_from_server_info(
    httpserver: HTTPServer,
    request: pytest.FixtureRequest,
    info: str,
    path: str,
    method: str,
    body: str,
    env: str,
) -> None:
    """Without `deployment:` serverInfo decides Cloud or Data Center, read once."""
    request.getfixturevalue(env)
    httpserver.expect_request("/rest/api/2/serverInfo").respond_with_json(load(info))
    httpserver.expect_request(path, method=method).respond_with_json(load(body))
    conn = make(httpserver.url_for("/"), None)
    assert conn.fetch(*query()).value == 153
    assert conn.fetch(*query()).value == 153
    assert [r.path for r, _ in httpserver.log] == ["/rest/api/2/serverInfo", path, path]
    assert conn.requests == 3


@pytest.mark.usefixtures("cloud_env")
def test_cloud_sum_pages_with_next_page_token(httpserver: HTTPServer) -> None:
    """`sum` follows nextPageToken, asks only for the summed field, and skips nulls."""
    params = {"jql": JQL, "fields": "customfield_10016", "maxResults": "1000"}
    httpserver.expect_ordered_request(SEARCH_CLOUD, query_string=params).respond_with_json(
        load("cloud_search_jql_sum_page1.json")
    )
    httpserver.expect_ordered_request(
        SEARCH_CLOUD,
        query_string={**params, "nextPageToken": "CAEaAggD"},
    ).respond_with_json(load("cloud_search_jql_sum_page2.json"))
    conn = make(httpserver.url_for("/"), "cloud")
    assert conn.fetch(*query(sum="customfield_10016")).value == 18
    assert conn.requests == 2
    httpserver.check_assertions()


@pytest.mark.usefixtures("dc_env")
def test_datacenter_sum_pages_with_start_at(httpserver: HTTPServer) -> None:
    """`sum` on Data Center advances startAt by what the server really returned."""
    params = {"jql": JQL, "fields": "customfield_10016", "maxResults": "1000"}
    httpserver.expect_ordered_request(SEARCH_DC, query_string=params).respond_with_json(
        load("dc_search_sum_page1.json")
    )
    httpserver.expect_ordered_request(
        SEARCH_DC, query_string={**params, "startAt": "3"}
    ).respond_with_json(load("dc_search_sum_page2.json"))
    conn = make(httpserver.url_for("/"), "datacenter", "jira-dc")
    assert conn.fetch(*query(sum="customfield_10016")).value == 18
    httpserver.check_assertions()


@pytest.mark.usefixtures("dc_env")
def test_failure_mid_way_never_gives_a_partial_sum(httpserver: HTTPServer) -> None:
    """A 5xx on page 2 fails the whole measurement."""
    httpserver.expect_ordered_request(SEARCH_DC).respond_with_json(load("dc_search_sum_page1.json"))
    httpserver.expect_ordered_request(SEARCH_DC).respond_with_data("Service Unavailable", 503)
    with pytest.raises(TransientFetchError, match="503"):
        make(httpserver.url_for("/"), "datacenter", "jira-dc").fetch(
            *query(sum="customfield_10016")
        )


@pytest.mark.parametrize(
    ("deployment", "path", "body"),
    [
        ("cloud", SEARCH_CLOUD, "cloud_search_jql_cycle.json"),
        ("datacenter", SEARCH_DC, "dc_search_cycle.json"),
    ],
)
@pytest.mark.usefixtures("cloud_env")
def test_avg_cycle_time_over_resolved_issues(
    httpserver: HTTPServer, deployment: str, path: str, body: str
) -> None:
    """Mean of resolutiondate - created in days, over resolved issues only."""
    httpserver.expect_request(
        path, query_string={"jql": JQL, "fields": "created,resolutiondate", "maxResults": "1000"}
    ).respond_with_json(load(body))
    reading = make(httpserver.url_for("/"), deployment).fetch(*query(metric="avg_cycle_time_days"))
    assert reading.value == pytest.approx((2 + 4 + 2 / 24) / 3)
    assert reading.note == "mean over 3 resolved issues"


@pytest.mark.usefixtures("cloud_env")
def test_avg_cycle_time_without_resolved_issues_is_an_error(httpserver: HTTPServer) -> None:
    """There is no mean of nothing: a clear error rather than 0."""
    httpserver.expect_request(SEARCH_CLOUD).respond_with_json(load("cloud_search_jql_empty.json"))
    with pytest.raises(FetchError, match="no resolved issues"):
        make(httpserver.url_for("/"), "cloud").fetch(*query(metric="avg_cycle_time_days"))


@pytest.mark.usefixtures("dc_env")
def test_sum_of_a_non_numeric_field_is_an_error(httpserver: HTTPServer) -> None:
    """Summing a select field says so instead of guessing."""
    httpserver.expect_request(SEARCH_DC).respond_with_json(load("dc_search_text_field.json"))
    with pytest.raises(FetchError, match="customfield_10016 is not a number"):
        make(httpserver.url_for("/"), "datacenter", "jira-dc").fetch(
            *query(sum="customfield_10016")
        )


@pytest.mark.usefixtures("cloud_env")
def test_bad_jql_shows_jiras_message(httpserver: HTTPServer) -> None:
    """A 400 shows Jira's own errorMessages and is not retried."""
    httpserver.expect_request(COUNT_CLOUD).respond_with_json(load("error_400_bad_jql.json"), 400)
    with pytest.raises(FetchError, match="Expecting either 'OR' or 'AND'") as info:
        make(httpserver.url_for("/"), "cloud").fetch(*query())
    assert not info.value.retryable


@pytest.mark.usefixtures("dc_env")
def test_not_found_hints_at_the_url(httpserver: HTTPServer) -> None:
    """A 404 points at the source's url."""
    httpserver.expect_request(SEARCH_DC).respond_with_json(load("error_404.json"), 404)
    with pytest.raises(FetchError, match="is `url` the Jira base URL"):
        make(httpserver.url_for("/"), "datacenter", "jira-dc").fetch(*query())


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.usefixtures("dc_env")
def test_auth_failure_names_the_env_var(httpserver: HTTPServer, status: int) -> None:
    """401 and 403 say which variable to check."""
    httpserver.expect_request(SEARCH_DC).respond_with_json(load("error_401.json"), status)
    with pytest.raises(AuthError, match="OKRSYNC_JIRA_DC_TOKEN"):
        make(httpserver.url_for("/"), "datacenter", "jira-dc").fetch(*query())


def test_cloud_without_credentials_fails_before_any_request(httpserver: HTTPServer) -> None:
    """A Cloud source with no env credentials says which variables to set."""
    conn = make(httpserver.url_for("/"), "cloud")
    with pytest.raises(AuthError, match=r"OKRSYNC_JIRA_USER.*OKRSYNC_JIRA_TOKEN"):
        conn.fetch(*query())
    assert httpserver.log == []
    assert conn.requests == 0


def test_detected_cloud_without_credentials(httpserver: HTTPServer) -> None:
    """A site that serverInfo shows to be Cloud also needs both variables."""
    httpserver.expect_request("/rest/api/2/serverInfo").respond_with_json(
        load("server_info_cloud.json")
    )
    with pytest.raises(AuthError, match="OKRSYNC_JIRA_USER"):
        make(httpserver.url_for("/"), None).fetch(*query())


def test_atlassian_net_host_is_cloud_without_asking() -> None:
    """An *.atlassian.net URL is Cloud: no serverInfo request, and creds are checked first."""
    conn = make("https://acme.atlassian.net", None)
    with pytest.raises(AuthError, match="Jira Cloud"):
        conn.fetch(*query())
    assert conn.requests == 0


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.usefixtures("cloud_env")
def test_library_does_not_retry(httpserver: HTTPServer, status: int) -> None:
    """With max_retries=0 the jira library sends once and does not sleep on 429/503."""
    httpserver.expect_request(COUNT_CLOUD).respond_with_json(
        {"errorMessages": ["Rate limit exceeded."]}, status, headers={"Retry-After": "1"}
    )
    expected = RateLimitedError if status == 429 else TransientFetchError
    with pytest.raises(expected) as info:
        make(httpserver.url_for("/"), "cloud").fetch(*query())
    assert len(httpserver.log) == 1
    if status == 429:
        assert isinstance(info.value, RateLimitedError) and info.value.retry_after == 1


@pytest.mark.usefixtures("dc_env")
def test_html_page_with_200_is_named(httpserver: HTTPServer) -> None:
    """A login page served with 200 is reported as HTML, not as a JSON parse error."""
    httpserver.expect_request(SEARCH_DC).respond_with_data(
        "<!DOCTYPE html><html><body>Log in</body></html>", 200, content_type="text/html"
    )
    with pytest.raises(FetchError, match="HTML page") as info:
        make(httpserver.url_for("/"), "datacenter", "jira-dc").fetch(*query())
    assert not info.value.retryable


def _echo_auth(request: Request) -> Response:
    """A hostile server that echoes our Authorization header in its error."""
    text = json.dumps({"errorMessages": [f"bad header {request.headers.get('Authorization')}"]})
    return Response(text, status=400, content_type="application/json")


@pytest.mark.parametrize("status", [400, 401, 500])
@pytest.mark.usefixtures("dc_env")
def test_token_never_in_error_messages(httpserver: HTTPServer, status: int) -> None:
    """Neither the message nor the printed traceback contains the token."""
    if status == 400:
        httpserver.expect_request(SEARCH_DC).respond_with_handler(_echo_auth)
    else:
        httpserver.expect_request(SEARCH_DC).respond_with_data(f"token {PAT} refused", status)
    with pytest.raises(FetchError) as info:
        make(httpserver.url_for("/"), "datacenter", "jira-dc").fetch(*query())
    text = "".join(traceback.format_exception(info.value))
    assert PAT not in text
    if status != 401:  # the server's text is shown, with the token masked
        assert "***" in str(info.value)


@pytest.mark.parametrize("bad", [-5, -1, True, 1.5])
@pytest.mark.parametrize(
    ("deployment", "method", "path", "key"),
    [("cloud", "POST", COUNT_CLOUD, "count"), ("datacenter", "GET", SEARCH_DC, "total")],
)
@pytest.mark.usefixtures("cloud_env")
def test_a_count_below_zero_or_not_whole_is_an_error(
    bad: Any, deployment: str, method: str, path: str, key: str
) -> None:
    """Cloud's `count` or Data Center's `total` below 0 (or not an integer) is never stored."""
    base = "http://127.0.0.1:9"
    with responses.RequestsMock() as rsps:
        add(rsps, method, base + path, 200, {key: bad})
        with pytest.raises(FetchError, match=f"`{key}`") as info:
            make(base, deployment).fetch(*query())
    assert not info.value.retryable
