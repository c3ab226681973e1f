"""PrometheusConnector end to end against a real Prometheus 2.x started by the tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_server import PrometheusServer, wait_for_value

from okrsync.connector import Window
from okrsync.connectors.prometheus import PrometheusConnector, PrometheusQuery, PrometheusSource
from okrsync.errors import FetchError, TransientFetchError
from okrsync.testing import Ask
from okrsync.testing import ask as ask_as


def connector(server: PrometheusServer) -> PrometheusConnector:
    """A connector for the test server."""
    return PrometheusConnector("prom", PrometheusSource(type="prometheus", url=server.url))


def ask(promql: str, **fields: Any) -> Ask[PrometheusQuery]:
    """A query over the last day."""
    now = datetime.now(UTC)
    return ask_as(PrometheusQuery, Window(now - timedelta(days=1), now), query=promql, **fields)


def test_gauge_value(prometheus_server: PrometheusServer) -> None:
    """A gauge set on the exporter is what fetch gives once Prometheus has scraped it."""
    prometheus_server.exporter.set("okrsync_e2e_bugs_closed", 42, team="core")
    wait_for_value(prometheus_server.url, "okrsync_e2e_bugs_closed", 42)
    conn = connector(prometheus_server)
    assert conn.fetch(*ask('okrsync_e2e_bugs_closed{team="core"}')).value == 42
    prometheus_server.exporter.set("okrsync_e2e_bugs_closed", 43.5, team="core")
    wait_for_value(prometheus_server.url, "okrsync_e2e_bugs_closed", 43.5)
    assert conn.fetch(*ask("okrsync_e2e_bugs_closed")).value == 43.5
    assert conn.requests == 2
    conn.close()


def test_reduce_over_two_series(prometheus_server: PrometheusServer) -> None:
    """Two series need `reduce`; with it they combine, without it the error says so."""
    exporter = prometheus_server.exporter
    exporter.set("okrsync_e2e_open", 3, team="api")
    exporter.set("okrsync_e2e_open", 4, team="web")
    wait_for_value(prometheus_server.url, "sum(okrsync_e2e_open)", 7)
    conn = connector(prometheus_server)
    summed = conn.fetch(*ask("okrsync_e2e_open", reduce="sum"))
    assert summed.value == 7
    assert conn.fetch(*ask("okrsync_e2e_open", reduce="max")).value == 4
    # the raw answer explain shows: the series before `reduce`, with their labels
    assert summed.answer is not None and summed.answer["resultType"] == "vector"
    assert summed.answer["series"] == 2
    by_team = {v["metric"]["team"]: v["value"] for v in summed.answer["values"]}
    assert by_team == {"api": 3.0, "web": 4.0}
    with pytest.raises(FetchError, match="gives 2 series"):
        conn.fetch(*ask("okrsync_e2e_open"))


def test_scalar(prometheus_server: PrometheusServer) -> None:
    """A scalar expression gives its value."""
    assert connector(prometheus_server).fetch(*ask("scalar(vector(0.25)) * 4")).value == 1


def test_no_series(prometheus_server: PrometheusServer) -> None:
    """A selector matching nothing is a clear error."""
    with pytest.raises(FetchError, match="no series matched 'okrsync_e2e_never_exported'"):
        connector(prometheus_server).fetch(*ask("okrsync_e2e_never_exported"))


def test_nan(prometheus_server: PrometheusServer) -> None:
    """A 0/0 result (NaN) is an error, not a value."""
    with pytest.raises(FetchError, match="is NaN"):
        connector(prometheus_server).fetch(*ask("vector(0) / 0"))


def test_range_vector(prometheus_server: PrometheusServer) -> None:
    """A range selector is an error suggesting an *_over_time function."""
    with pytest.raises(FetchError, match=r"range vector: wrap it in e\.g\. avg_over_time"):
        connector(prometheus_server).fetch(*ask("up[5m]"))


def test_parse_error(prometheus_server: PrometheusServer) -> None:
    """A PromQL syntax error shows Prometheus's own message and is not retryable."""
    with pytest.raises(FetchError) as info:
        connector(prometheus_server).fetch(*ask("okrsync_e2e_bugs_closed{"))
    assert not isinstance(info.value, TransientFetchError)
    assert "bad_data" in str(info.value)
    assert "parse error: unexpected end of input inside braces" in str(info.value)


def test_execution_error(prometheus_server: PrometheusServer) -> None:
    """A duplicate-series match error (422 execution) shows Prometheus's text and is permanent."""
    exporter = prometheus_server.exporter
    exporter.set("okrsync_e2e_pair", 1, side="left")
    exporter.set("okrsync_e2e_pair", 2, side="right")
    wait_for_value(prometheus_server.url, "count(okrsync_e2e_pair)", 2)
    promql = 'okrsync_e2e_pair{side="left"} + on() okrsync_e2e_pair'
    with pytest.raises(FetchError, match="many-to-many matching not allowed") as info:
        connector(prometheus_server).fetch(*ask(promql))
    assert not info.value.retryable


def test_wrong_base_url(prometheus_server: PrometheusServer) -> None:
    """A base URL with a path Prometheus does not serve gives its plain 404, permanent."""
    conn = PrometheusConnector(
        "prom", PrometheusSource(type="prometheus", url=prometheus_server.url + "/api/v1")
    )
    with pytest.raises(FetchError, match="HTTP 404") as info:
        conn.fetch(*ask("up"))
    assert not info.value.retryable


def test_the_byte_cap_holds_on_a_real_gzipped_answer(prometheus_server: PrometheusServer) -> None:
    """Real Prometheus answers (gzip when asked) pass the default cap; past a tiny one, error."""
    many = "label_replace(up, 'pad', '" + "x" * 400 + "', '', '')"
    assert connector(prometheus_server).fetch(*ask("count(up)")).value >= 1
    source = PrometheusSource(type="prometheus", url=prometheus_server.url, max_response_bytes=300)
    with pytest.raises(FetchError, match=r"larger than 300 bytes \(max_response_bytes\)"):
        PrometheusConnector("prom", source).fetch(*ask(many))
