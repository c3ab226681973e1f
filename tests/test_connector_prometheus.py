"""PrometheusConnector against recorded-shape answers (see tests/fixtures/prometheus/)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from pydantic import ValidationError

from okrsync.connector import Reading, Window
from okrsync.connectors.prometheus import PrometheusConnector, PrometheusQuery, PrometheusSource
from okrsync.errors import AuthError, FetchError, TransientFetchError
from okrsync.measure.retry import call_with_retry
from okrsync.testing import Ask, ConnectorContract
from okrsync.testing import ask as ask_as

FIXTURES = Path(__file__).parent / "fixtures" / "prometheus"
BASE_URL = "http://prometheus.test:9090"
QUERY_URL = f"{BASE_URL}/api/v1/query"
SINCE = datetime(2026, 1, 1, tzinfo=UTC)
UNTIL = datetime(2026, 3, 31, tzinfo=UTC)
TOKEN = "s3cr3t-prom-token-0042"


def load(name: str) -> Any:
    """The JSON fixture `name`.json."""
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def make(name: str = "prom", url: str = BASE_URL) -> PrometheusConnector:
    """A connector for source `name` at `url`."""
    return PrometheusConnector(name, PrometheusSource(type="prometheus", url=url))


def ask(query: str = "okrsync_bugs_closed", **fields: Any) -> Ask[PrometheusQuery]:
    """A query for the KR fields given."""
    return ask_as(PrometheusQuery, Window(SINCE, UNTIL), query=query, **fields)


def fetch(body: Any, status: int = 200, **fields: Any) -> Reading:
    """Fetch once against a fake Prometheus answering `body` (a fixture name or JSON)."""
    payload = load(body) if isinstance(body, str) else body
    with responses.RequestsMock() as rsps:
        rsps.get(QUERY_URL, json=payload, status=status)
        return make().fetch(*ask(**fields))


@pytest.fixture(autouse=True)
def _no_prom_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start without any OKRSYNC_PROM* credentials from the outer environment."""
    for source in ("PROM", "PROM_EU"):
        for suffix in ("TOKEN", "USER", "PASSWORD"):
            monkeypatch.delenv(f"OKRSYNC_{source}_{suffix}", raising=False)
            monkeypatch.delenv(f"OKRSYNC_{source}_{suffix}_FILE", raising=False)


class TestPrometheusContract(ConnectorContract):
    """The shared connector contract, with Prometheus-shaped answers."""

    expected_value = 42.0
    empty_expectation = FetchError
    ENDPOINT = ("GET", "/api/v1/query")

    def make(self, base_url: str) -> PrometheusConnector:
        return make(url=base_url)

    def query(self) -> Ask[PrometheusQuery]:
        return ask()

    def good_body(self) -> Any:
        return load("vector_one")

    def empty_body(self) -> Any:
        return load("vector_empty")

    def auth_failure_body(self) -> Any:
        return "Unauthorized\n"  # what Prometheus's --web.config.file basic auth answers


def test_single_series_request() -> None:
    """A one-series vector gives its value; the query goes as a GET parameter, counted."""
    with responses.RequestsMock() as rsps:
        rsps.get(QUERY_URL, json=load("vector_one"))
        conn = make()
        reading = conn.fetch(*ask('sum(okrsync_bugs_closed{job="tracker"})'))
        request = rsps.calls[0].request
    assert reading == Reading(42.0)
    assert parse_qs(urlsplit(str(request.url)).query) == {
        "query": ['sum(okrsync_bugs_closed{job="tracker"})']
    }
    assert request.headers["User-Agent"].startswith("okrsync/")
    assert "Authorization" not in request.headers
    assert conn.requests == 1
    conn.close()


def test_a_window_with_an_instant_evaluates_the_query_at_it() -> None:
    """`Window.at` (an SLO's queries) is sent as `time`, in seconds, so every query of a
    tick counts the same samples; without it Prometheus evaluates at its own now."""
    at = datetime(2026, 2, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    with responses.RequestsMock() as rsps:
        rsps.get(QUERY_URL, json=load("vector_one"))
        make().fetch(PrometheusQuery(query="x"), Window(SINCE, UNTIL, at=at))
        sent = parse_qs(urlsplit(str(rsps.calls[0].request.url)).query)
    assert sent == {"query": ["x"], "time": ["1769947200.25"]}


def test_scalar() -> None:
    """A scalar result gives its value."""
    assert fetch("scalar").value == 0.875


def test_aggregated_vector_without_labels() -> None:
    """An aggregation (one series, no labels) gives its value."""
    assert fetch("vector_aggregated").value == 0.9975


@pytest.mark.parametrize(
    ("reduce", "value"), [("sum", 8.0), ("avg", 8.0 / 3), ("min", 0.5), ("max", 4.5)]
)
def test_reduce_over_series(reduce: str, value: float) -> None:
    """`reduce` combines several series into one number and says so in the note."""
    reading = fetch("vector_three", reduce=reduce)
    assert reading.value == pytest.approx(value)
    assert reading.note == f"{reduce} of 3 series"


def test_several_series_without_reduce() -> None:
    """Several series without `reduce` is an error naming the count and the fix."""
    with pytest.raises(FetchError, match="gives 3 series") as info:
        fetch("vector_three")
    assert "reduce: sum" in str(info.value)
    assert 'team="api"' in str(info.value)
    assert not info.value.retryable


def test_unknown_reduce_is_refused_before_asking() -> None:
    """An unknown `reduce` is refused by the query model (so at `validate`): no request."""
    with pytest.raises(ValidationError, match="'sum', 'avg', 'min' or 'max'"):
        ask(reduce="median")


def test_missing_query() -> None:
    """A query without the `query` field is refused by the query model."""
    with pytest.raises(ValidationError, match="query"):
        PrometheusQuery.model_validate({"reduce": "sum"})


def test_empty_vector() -> None:
    """No matching series is an error that names the query."""
    with pytest.raises(FetchError, match="no series matched 'okrsync_bugs_closed'"):
        fetch("vector_empty")


@pytest.mark.parametrize(("name", "shown"), [("vector_nan", "NaN"), ("vector_inf", "+Inf")])
def test_not_a_number(name: str, shown: str) -> None:
    """NaN and +Inf samples are errors, not progress values."""
    with pytest.raises(FetchError, match="not a number") as info:
        fetch(name)
    assert f"is {shown}" in str(info.value)


def test_string_result() -> None:
    """A string result is an error."""
    with pytest.raises(FetchError, match="gives a string, not a number"):
        fetch("string")


def test_matrix_result() -> None:
    """A range vector is an error that says how to turn it into one number."""
    with pytest.raises(FetchError, match=r"range vector: wrap it in e\.g\. avg_over_time"):
        fetch("matrix")


def test_malformed_success_body() -> None:
    """A success body without the expected fields is a clear error, not a traceback."""
    with pytest.raises(FetchError, match="unexpected answer"):
        fetch({"status": "success", "data": {"resultType": "vector"}})


@pytest.mark.parametrize(
    ("name", "status", "error_type", "retryable"),
    [
        ("err_parse", 400, FetchError, False),
        ("err_exec", 422, FetchError, False),
        ("err_exec_deadline", 422, TransientFetchError, True),
        ("err_timeout", 503, TransientFetchError, True),
    ],
)
def test_prometheus_error_payload(
    name: str, status: int, error_type: type[FetchError], retryable: bool
) -> None:
    """Prometheus's own error text is shown; only timeouts and deadlines are transient."""
    payload = load(name)
    with pytest.raises(error_type) as info:
        fetch(payload, status=status)
    assert payload["error"] in str(info.value)
    assert payload["errorType"] in str(info.value)
    assert info.value.retryable is retryable


def test_permanent_error_is_not_retried() -> None:
    """A PromQL parse error is asked once under the retry policy."""
    with responses.RequestsMock() as rsps:
        rsps.get(QUERY_URL, json=load("err_parse"), status=400)
        conn = make()
        with pytest.raises(FetchError, match="parse error"):
            call_with_retry(lambda: conn.fetch(*ask("okrsync_bugs_closed{")), sleep=lambda _: None)
    assert conn.requests == 1


def test_timeout_payload_then_success() -> None:
    """A query timeout (503) is retried by the policy, then gives the value."""
    with responses.RequestsMock() as rsps:
        rsps.get(QUERY_URL, json=load("err_timeout"), status=503)
        rsps.get(QUERY_URL, json=load("vector_one"))
        conn = make()
        reading = call_with_retry(lambda: conn.fetch(*ask()), sleep=lambda _: None)
    assert reading.value == 42.0
    assert conn.requests == 2


def test_wrong_path_plain_404() -> None:
    """Prometheus answers unknown paths with a plain-text 404: a permanent error."""
    with responses.RequestsMock() as rsps:
        rsps.get(QUERY_URL, body="404 page not found\n", status=404)
        with pytest.raises(FetchError, match="HTTP 404") as info:
            make().fetch(*ask())
    assert not info.value.retryable


@pytest.mark.parametrize("status", [401, 403])
def test_auth_hint_names_env_vars(status: int) -> None:
    """401/403 name the source's credential variables."""
    with responses.RequestsMock() as rsps:
        rsps.get("http://p.test/api/v1/query", body="Unauthorized\n", status=status)
        with pytest.raises(AuthError) as info:
            make("prom-eu", "http://p.test/").fetch(*ask())
    assert "OKRSYNC_PROM_EU_TOKEN or OKRSYNC_PROM_EU_USER/OKRSYNC_PROM_EU_PASSWORD" in str(
        info.value
    )


def _sent_authorization(conn: PrometheusConnector) -> str | None:
    """The Authorization header `conn` sends with a query."""
    with responses.RequestsMock() as rsps:
        rsps.get(QUERY_URL, json=load("vector_one"))
        conn.fetch(*ask())
        return rsps.calls[0].request.headers.get("Authorization")


def test_basic_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    """USER and PASSWORD from the environment make a basic auth header."""
    monkeypatch.setenv("OKRSYNC_PROM_USER", "okr-bot")
    monkeypatch.setenv("OKRSYNC_PROM_PASSWORD", "pa55-word-x")
    expected = base64.b64encode(b"okr-bot:pa55-word-x").decode()
    assert _sent_authorization(make()) == f"Basic {expected}"


def test_bearer_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """TOKEN from the environment makes a bearer header."""
    monkeypatch.setenv("OKRSYNC_PROM_TOKEN", TOKEN)
    assert _sent_authorization(make()) == f"Bearer {TOKEN}"


def test_token_from_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """TOKEN_FILE names a file holding the token (trailing newline ignored)."""
    (tmp_path / "token").write_text(TOKEN + "\n", encoding="utf-8")
    monkeypatch.setenv("OKRSYNC_PROM_TOKEN_FILE", str(tmp_path / "token"))
    assert _sent_authorization(make()) == f"Bearer {TOKEN}"


def test_unreadable_secret_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A *_FILE pointing nowhere is an AuthError naming the variable."""
    monkeypatch.setenv("OKRSYNC_PROM_PASSWORD_FILE", str(tmp_path / "missing"))
    monkeypatch.setenv("OKRSYNC_PROM_USER", "okr-bot")
    with pytest.raises(AuthError, match="OKRSYNC_PROM_PASSWORD_FILE"):
        make().fetch(*ask())


def test_user_without_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """USER without PASSWORD is an AuthError, not an unauthenticated request."""
    monkeypatch.setenv("OKRSYNC_PROM_USER", "okr-bot")
    conn = make()
    with pytest.raises(AuthError, match="OKRSYNC_PROM_PASSWORD is not"):
        conn.fetch(*ask())
    assert conn.requests == 0


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"status": "error", "errorType": "bad_data", "error": f"bad token {TOKEN}"}),
        (401, f"Unauthorized: {TOKEN}"),
        (500, f"internal error with Authorization: Bearer {TOKEN}"),
        (200, f"not json {TOKEN}"),
        (200, {"status": "success", "data": {"echo": TOKEN}}),
    ],
)
def test_token_never_in_errors(monkeypatch: pytest.MonkeyPatch, status: int, body: Any) -> None:
    """Even when a server echoes the token back, no error message contains it."""
    monkeypatch.setenv("OKRSYNC_PROM_TOKEN", TOKEN)
    kind = "json" if isinstance(body, dict) else "body"
    with responses.RequestsMock() as rsps:
        rsps.get(QUERY_URL, status=status, **{kind: body})
        with pytest.raises(FetchError) as info:
            make().fetch(*ask())
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(info.value)


def _scalar(result: Any) -> Any:
    return {"status": "success", "data": {"resultType": "scalar", "result": result}}


def _vector(*series: Any) -> Any:
    return {"status": "success", "data": {"resultType": "vector", "result": list(series)}}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (_scalar("12345"), "a scalar result"),
        (_scalar([1795613081.457, True]), "a scalar result"),
        (_scalar([1795613081.457, 7]), "a scalar result"),
        (_scalar(["1795613081", "7"]), "a scalar result"),
        (_scalar([True, "7"]), "a scalar result"),
        (_scalar([1795613081.457, "7", "8"]), "a scalar result"),
        (_vector({"metric": {}, "value": "98"}), "a vector sample value"),
        (_vector({"metric": {}, "value": [1795613081.441, True]}), "a vector sample value"),
        (_vector({"metric": {}, "value": [1795613081.441]}), "a vector sample value"),
        (_vector({"value": [1795613081.441, "1"]}), "vector elements"),
        (_vector({"metric": "up", "value": [1795613081.441, "1"]}), "vector elements"),
        (_vector("98"), "a vector result"),
        ({"status": "success", "data": {"resultType": "vector", "result": "98"}}, "a vector"),
    ],
)
def test_wrong_shaped_answers_are_errors_not_numbers(body: Any, expected: str) -> None:
    """An answer not shaped as the HTTP API documents is an error naming what was due."""
    with pytest.raises(FetchError, match="unexpected answer from Prometheus") as info:
        fetch(body, reduce="sum")
    assert f"expected {expected}" in str(info.value)
    assert not info.value.retryable


def test_documented_scalar_and_vector_shapes_still_give_numbers() -> None:
    """The recorded Prometheus 2.42 shapes (integer or float time) still give their values."""
    assert fetch(_scalar([1795613081.471, "2"])).value == 2
    assert fetch(_scalar([1795613081, "12345"])).value == 12345
    series = {"metric": {"job": "a"}, "value": [1795613081.441, "98"]}
    assert fetch(_vector(series)).value == 98
