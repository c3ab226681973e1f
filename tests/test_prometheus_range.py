"""PrometheusConnector.fetch_range: against a real Prometheus holding weeks of past samples
(written with promtool), and against `responses` fakes for answers a real server never gives."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from prometheus_server import (
    HistoricalPrometheus,
    HistorySample,
    openmetrics,
    series,
    start_prometheus_with_history,
)

from okrsync.connector import RangePoint, Window
from okrsync.connectors.prometheus import PrometheusConnector, PrometheusQuery, PrometheusSource
from okrsync.errors import FetchError, RateLimitedError, TransientFetchError
from okrsync.testing import ask as ask_as

START = datetime(2026, 10, 1, tzinfo=UTC)
END = datetime(2026, 10, 29, tzinfo=UTC)  # 28 days: 673 hourly instants
HOUR, MINUTE, DAY = timedelta(hours=1), timedelta(minutes=1), timedelta(days=1)
GAP = range(100, 106)  # hours without a sample in okrsync_hist_gappy (6 h > 5 min lookback)
BASE_URL = "http://prometheus.test:9090"
RANGE_URL = f"{BASE_URL}/api/v1/query_range"


def history() -> Iterator[HistorySample]:
    """Hourly gauges from START to END: level{api} = hours since START, level{web} = 1000 +
    hour of day, daily = hour of day, gappy = hours since START except in GAP."""
    yield from series("okrsync_hist_level", {"team": "api"}, START, END, HOUR, float)
    yield from series(
        "okrsync_hist_level", {"team": "web"}, START, END, HOUR, lambda k: 1000 + k % 24
    )
    yield from series("okrsync_hist_daily", {"team": "api"}, START, END, HOUR, lambda k: k % 24)
    yield from series(
        "okrsync_hist_gappy", {"team": "api"}, START, END, HOUR, lambda k: None if k in GAP else k
    )


@pytest.fixture(scope="module")
def history_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HistoricalPrometheus]:
    """A real Prometheus holding `history()` only; skipped (failed on CI) when absent."""
    with start_prometheus_with_history(tmp_path_factory.mktemp("prom-history"), history()) as srv:
        yield srv


def connector(url: str = BASE_URL) -> PrometheusConnector:
    """A connector for source `prom` at `url`."""
    return PrometheusConnector("prom", PrometheusSource(type="prometheus", url=url))


def fetch_range(
    conn: PrometheusConnector,
    promql: str,
    start: datetime = START,
    end: datetime = END,
    step: timedelta = HOUR,
    **fields: Any,
) -> list[RangePoint]:
    """`conn.fetch_range` for the KR query fields given, as backfill calls it."""
    query, window = ask_as(PrometheusQuery, Window(start, end), query=promql, **fields)
    return conn.fetch_range(query, window, start, end, step)


def values(points: list[RangePoint]) -> dict[datetime, float]:
    """The value of each point that has one, by instant."""
    return {p.at: p.reading.value for p in points if p.reading is not None}


def major_version(server: HistoricalPrometheus) -> int:
    """Prometheus's major version: 3.0 made range selectors and lookback left-open."""
    info = requests.get(f"{server.url}/api/v1/status/buildinfo", timeout=5).json()
    return int(info["data"]["version"].split(".")[0])


# --- against the real Prometheus ------------------------------------------------------------


def test_one_series_hourly_for_28_days_in_one_request(history_server: HistoricalPrometheus) -> None:
    """28 days at 1 h are 673 instants, all in one query_range request, each at start + k*step
    (aware UTC) with the value stored at that hour; one series' point carries no answer
    (its value is the sample; query and instant reproduce it)."""
    conn = connector(history_server.url)
    served = history_server.requests_served()
    points = fetch_range(conn, 'okrsync_hist_level{team="api"}')
    assert [p.at for p in points] == [START + k * HOUR for k in range(673)]
    assert all(p.at.tzinfo == UTC and p.error is None for p in points)
    assert [p.reading.value for p in points if p.reading] == [float(k) for k in range(673)]
    assert conn.requests == 1
    assert history_server.requests_served() - served == 1
    assert all(p.reading and p.reading.answer is None for p in points)


def test_sum_in_promql_at_given_instants(history_server: HistoricalPrometheus) -> None:
    """sum(...) over the two series gives api + web at each instant, computed here by hand."""
    by_at = values(fetch_range(connector(history_server.url), "sum(okrsync_hist_level)"))
    assert len(by_at) == 673
    assert by_at[datetime(2026, 10, 1, 0, tzinfo=UTC)] == 0 + 1000 + 0
    assert by_at[datetime(2026, 10, 2, 6, tzinfo=UTC)] == 30 + 1000 + 6
    assert by_at[datetime(2026, 10, 28, 23, tzinfo=UTC)] == 671 + 1000 + 23


@pytest.mark.parametrize(("reduce", "at_k30"), [("sum", 1036.0), ("max", 1006.0), ("min", 30.0)])
def test_reduce_over_two_series(
    history_server: HistoricalPrometheus, reduce: str, at_k30: float
) -> None:
    """With `reduce`, two series combine at each instant, with fetch's note and both series."""
    points = fetch_range(connector(history_server.url), "okrsync_hist_level", reduce=reduce)
    assert len(points) == 673
    point = next(p for p in points if p.at == datetime(2026, 10, 2, 6, tzinfo=UTC))
    assert point.reading is not None and point.reading.value == at_k30
    assert point.reading.note == f"{reduce} of 2 series"
    assert point.reading.answer is not None and point.reading.answer["series"] == 2
    by_team = {v["metric"]["team"]: v["value"] for v in point.reading.answer["values"]}
    assert by_team == {"api": 30.0, "web": 1006.0}


def test_several_series_without_reduce_is_an_error_per_instant(
    history_server: HistoricalPrometheus,
) -> None:
    """Two series and no `reduce` give every instant fetch's error instead of a number."""
    points = fetch_range(connector(history_server.url), "okrsync_hist_level", end=START + 2 * HOUR)
    assert [p.at for p in points] == [START, START + HOUR, START + 2 * HOUR]
    assert all(p.reading is None for p in points)
    assert {p.error for p in points} == {
        "prom: 'okrsync_hist_level' gives 2 series, not one "
        '(okrsync_hist_level{team="api"}, okrsync_hist_level{team="web"}): '
        "set `reduce: sum` (or avg, min, max) on the key result, "
        "or aggregate in PromQL, e.g. sum(...)"
    }


def test_avg_over_time_at_day_boundaries(history_server: HistoricalPrometheus) -> None:
    """avg_over_time(x[1d]) at midnight, hand-computed from the hour-of-day samples: in
    Prometheus 2.x the window holds both ends (25 samples: 0..23 and the next 0: 276/25);
    3.x drops its start (24 samples: 1..23, 0: 276/24). On 2026-10-01 only its own 0."""
    points = fetch_range(
        connector(history_server.url),
        "avg_over_time(okrsync_hist_daily[1d])",
        end=datetime(2026, 10, 4, tzinfo=UTC),
        step=DAY,
    )
    full_day = 276 / 25 if major_version(history_server) < 3 else 276 / 24
    assert values(points) == {
        datetime(2026, 10, 1, tzinfo=UTC): 0.0,
        datetime(2026, 10, 2, tzinfo=UTC): pytest.approx(full_day),
        datetime(2026, 10, 3, tzinfo=UTC): pytest.approx(full_day),
        datetime(2026, 10, 4, tzinfo=UTC): pytest.approx(full_day),
    }


def test_missing_hours_are_absent_not_zero(history_server: HistoricalPrometheus) -> None:
    """Hours without a sample (longer than the 5 min lookback) are absent from the points."""
    points = fetch_range(connector(history_server.url), "okrsync_hist_gappy")
    present = {round((p.at - START) / HOUR) for p in points}
    assert present == set(range(673)) - set(GAP)
    assert values(points)[START + 99 * HOUR] == 99
    assert values(points)[START + 106 * HOUR] == 106
    assert all(
        p.reading is not None and p.reading.value == k
        for k, p in zip(sorted(present), points, strict=True)
    )


def test_lookback_reaches_5_minutes_past_the_last_sample(
    history_server: HistoricalPrometheus,
) -> None:
    """At 1 min steps, the 99:00 sample stays visible for 5 minutes (the end included in 2.x,
    excluded in 3.x), then nothing until the 106:00 sample."""
    start = START + 99 * HOUR
    points = fetch_range(
        connector(history_server.url), "okrsync_hist_gappy", start, start + 7 * HOUR, MINUTE
    )
    minutes = [round((p.at - start) / MINUTE) for p in points]
    last_seen = 5 if major_version(history_server) < 3 else 4
    assert minutes == [*range(last_seen + 1), *range(420, 421)]
    assert [p.reading.value for p in points if p.reading] == [99.0] * (last_seen + 1) + [106.0]


def test_a_span_past_11000_points_splits_in_two_requests(
    history_server: HistoricalPrometheus,
) -> None:
    """8 days at 1 min are 11,521 instants: two requests (counted by the connector and by
    Prometheus itself), each instant once, in order, valued its own time."""
    conn = connector(history_server.url)
    served = history_server.requests_served()
    end = START + 8 * DAY
    points = fetch_range(conn, "time()", START, end, MINUTE)
    assert [p.at for p in points] == [START + k * MINUTE for k in range(11_521)]
    assert [p.reading.value for p in points if p.reading] == [p.at.timestamp() for p in points]
    assert conn.requests == 2
    assert history_server.requests_served() - served == 2


@pytest.mark.parametrize(("instants", "expected"), [(11_000, 1), (11_001, 2), (22_000, 2)])
def test_requests_at_the_11000_boundary(
    history_server: HistoricalPrometheus, instants: int, expected: int
) -> None:
    """Exactly 11,000 instants fit one request; one more needs a second."""
    conn = connector(history_server.url)
    served = history_server.requests_served()
    points = fetch_range(conn, "vector(1)", START, START + (instants - 1) * MINUTE, MINUTE)
    assert len(points) == instants
    assert conn.requests == expected
    assert history_server.requests_served() - served == expected


def test_nan_at_an_instant_is_an_error_there(history_server: HistoricalPrometheus) -> None:
    """x / x is 0/0 (NaN) at hour 0: that instant carries the error, the others their 1."""
    promql = 'okrsync_hist_level{team="api"} / okrsync_hist_level{team="api"}'
    points = fetch_range(connector(history_server.url), promql, end=START + 2 * HOUR)
    assert points[0].at == START and points[0].reading is None
    assert points[0].error is not None and "is NaN, not a number" in points[0].error
    assert [p.reading.value for p in points[1:] if p.reading] == [1.0, 1.0]


def test_bad_promql_raises_prometheus_message(history_server: HistoricalPrometheus) -> None:
    """A PromQL syntax error raises FetchError with Prometheus's own text, not retryable."""
    conn = connector(history_server.url)
    with pytest.raises(FetchError) as info:
        fetch_range(conn, "okrsync_hist_level{")
    assert not isinstance(info.value, TransientFetchError)
    assert "Prometheus bad_data error" in str(info.value)
    assert "parse error: unexpected end of input inside braces" in str(info.value)
    assert conn.requests == 1


def test_a_string_or_range_vector_is_refused_by_prometheus(
    history_server: HistoricalPrometheus,
) -> None:
    """query_range takes only scalars and instant vectors: Prometheus's message says so."""
    conn = connector(history_server.url)
    for promql, kind in (('"hello"', "string"), ("okrsync_hist_level[1h]", "range vector")):
        with pytest.raises(FetchError, match=f'invalid expression type "{kind}" for range query'):
            fetch_range(conn, promql)


def test_openmetrics_sorts_by_series_then_time() -> None:
    """The promtool input groups each family, sorts series by labels and samples by time
    (promtool drops an out-of-order sample silently), in seconds, ending in # EOF."""
    later, earlier = START + HOUR, START
    text = openmetrics(
        [
            HistorySample("b", {"x": "2"}, 1, later),
            HistorySample("a", {}, 0.5, later),
            HistorySample("b", {"x": "1"}, float("nan"), later),
            HistorySample("b", {"x": "2"}, 2, earlier),
            HistorySample("a", {}, 1.5, earlier),
        ]
    )
    assert text == (
        "# TYPE a gauge\n"
        "a{} 1.5 1790812800\n"
        "a{} 0.5 1790816400\n"
        "# TYPE b gauge\n"
        'b{x="1"} NaN 1790816400\n'
        'b{x="2"} 2.0 1790812800\n'
        'b{x="2"} 1.0 1790816400\n'
        "# EOF\n"
    )


def test_recent_samples_are_refused(tmp_path: Path) -> None:
    """Samples of the last 3 h (the head block's span) are refused before promtool runs."""
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    recent = [HistorySample("a", {}, 1, now - timedelta(hours=2))]
    started = start_prometheus_with_history(tmp_path, recent, now=now)
    with pytest.raises(ValueError, match="1 samples are newer than 2026-12-01T09:00Z"):
        started.__enter__()
    assert not (tmp_path / "data").exists()


# --- against fakes shaped like the real API ---------------------------------------------------

# The shape of the recorded answer in /work/shared/fixtures/prometheus-2.42-recorded/
# query_range.json (query=up, step=2s over 6 s): integer times, string values.
RECORDED_START = datetime.fromtimestamp(1795613075, UTC)


def matrix(*listed: tuple[dict[str, str], list[list[Any]]]) -> dict[str, Any]:
    """A successful query_range body with these (metric, values) series."""
    result = [{"metric": metric, "values": values} for metric, values in listed]
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}


UP = {"__name__": "up", "instance": "127.0.0.1:19090", "job": "prometheus"}


def asked(call: Any) -> dict[str, str]:
    """The query parameters of a recorded `responses` call."""
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


@responses.activate
def test_recorded_answer_shape() -> None:
    """The recorded query_range answer gives one point per sample, asked in Unix seconds."""
    times = [1795613075, 1795613077, 1795613079, 1795613081]
    responses.get(RANGE_URL, json=matrix((UP, [[t, "1"] for t in times])))
    end = RECORDED_START + timedelta(seconds=6)
    points = fetch_range(connector(), "up", RECORDED_START, end, timedelta(seconds=2))
    assert [p.at.timestamp() for p in points] == times
    assert asked(responses.calls[0]) == {
        "query": "up",
        "start": "1795613075",
        "end": "1795613081",
        "step": "2",
    }


@pytest.mark.parametrize(
    ("step", "shown"),
    [
        (14 * DAY, "1209600"),
        (timedelta(seconds=1234567), "1234567"),
        (timedelta(seconds=1.5), "1.5"),
    ],
)
@responses.activate
def test_step_is_plain_seconds(step: timedelta, shown: str) -> None:
    """Steps are sent as plain seconds to the millisecond, never rounded to 6 digits."""
    responses.get(RANGE_URL, json=matrix())
    assert fetch_range(connector(), "up", START, START + 2 * step, step) == []
    assert asked(responses.calls[0])["step"] == shown
    assert float(asked(responses.calls[0])["end"]) - START.timestamp() == 2 * step.total_seconds()


@responses.activate
def test_chunks_do_not_overlap() -> None:
    """11,001 instants are asked as 11,000 then 1, the second starting one step later."""
    responses.get(RANGE_URL, json=matrix())
    fetch_range(connector(), "up", START, START + 11_000 * MINUTE, MINUTE)
    first = START.timestamp()
    assert [(asked(c)["start"], asked(c)["end"], asked(c)["step"]) for c in responses.calls] == [
        (f"{first:.0f}", f"{first + 10_999 * 60:.0f}", "60"),
        (f"{first + 11_000 * 60:.0f}", f"{first + 11_000 * 60:.0f}", "60"),
    ]


@responses.activate
def test_millisecond_times_round_to_the_instant() -> None:
    """Prometheus's float times (e.g. 1435781430.781, the documented example) map back to
    start + k*step."""
    start = datetime.fromtimestamp(1435781430.781, UTC)
    body = matrix((UP, [[1435781430.781, "1"], [1435781445.781, "2"], [1435781460.781, "3"]]))
    responses.get(RANGE_URL, json=body)
    points = fetch_range(
        connector(), "up", start, start + 30 * timedelta(seconds=1), 15 * timedelta(seconds=1)
    )
    assert [(p.at, p.reading.value if p.reading else None) for p in points] == [
        (start, 1.0),
        (start + timedelta(seconds=15), 2.0),
        (start + timedelta(seconds=30), 3.0),
    ]
    assert asked(responses.calls[0])["start"] == "1435781430.781"


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"metric": UP, "values": "1"}, "expected matrix elements {metric"),
        (
            {"metric": UP, "values": [[1795613075, 1]]},
            'expected matrix samples [<unix time>, "<value>"]',
        ),
        ({"metric": UP}, "expected matrix elements {metric"),
        ({"metric": UP, "values": [[1795613075 + 60, "1"]]}, "expected samples between the asked"),
    ],
)
@responses.activate
def test_malformed_matrix(result: dict[str, Any], expected: str) -> None:
    """A matrix not shaped as documented (or with samples outside the span) is a clear error
    showing the start of the answer."""
    body = {"status": "success", "data": {"resultType": "matrix", "result": [result]}}
    responses.get(RANGE_URL, json=body)
    end = RECORDED_START + timedelta(seconds=6)
    with pytest.raises(FetchError, match="unexpected answer from Prometheus") as info:
        fetch_range(connector(), "up", RECORDED_START, end, timedelta(seconds=2))
    assert expected in str(info.value)
    assert '"resultType": "matrix"' in str(info.value)  # the start of the answer


@pytest.mark.parametrize("kind", ["vector", "scalar", "string"])
@responses.activate
def test_not_a_matrix(kind: str) -> None:
    """query_range always answers a matrix (scalars too); anything else is named."""
    result: Any = [] if kind == "vector" else [1795613075, "1"]
    responses.get(
        RANGE_URL, json={"status": "success", "data": {"resultType": kind, "result": result}}
    )
    with pytest.raises(FetchError, match=f"prom: query_range answered a {kind} for 'up'"):
        fetch_range(connector(), "up", RECORDED_START, RECORDED_START, timedelta(seconds=2))


@responses.activate
def test_nan_and_inf_samples() -> None:
    """A NaN or +Inf sample makes that instant an error; the other instants keep values."""
    times = [1795613075, 1795613077, 1795613079]
    responses.get(
        RANGE_URL, json=matrix((UP, [[times[0], "NaN"], [times[1], "4"], [times[2], "+Inf"]]))
    )
    end = RECORDED_START + timedelta(seconds=4)
    points = fetch_range(connector(), "up", RECORDED_START, end, timedelta(seconds=2))
    assert points[1].reading is not None and points[1].reading.value == 4
    assert points[0].error is not None and "is NaN, not a number" in points[0].error
    assert points[2].error is not None and "is +Inf, not a number" in points[2].error
    assert (
        'up{instance="127.0.0.1:19090", job="prometheus"} at 2026-11-25T13:24:35Z is NaN'
        in points[0].error
    )


@responses.activate
def test_rate_limited_with_retry_after() -> None:
    """A 429 with Retry-After raises RateLimitedError carrying the wait."""
    responses.get(RANGE_URL, body="Too Many Requests", status=429, headers={"Retry-After": "7"})
    with pytest.raises(
        RateLimitedError, match=r"rate limited \(HTTP 429\); retry after 7s"
    ) as info:
        fetch_range(connector(), "up")
    assert info.value.retry_after == 7


@responses.activate
def test_a_failing_second_chunk_raises() -> None:
    """When the second chunk's request fails, fetch_range raises as fetch would."""
    timeout = {
        "status": "error",
        "errorType": "timeout",
        "error": "query timed out in query execution",
    }
    responses.get(RANGE_URL, json=matrix())
    responses.get(RANGE_URL, json=timeout, status=503)
    conn = connector()
    with pytest.raises(TransientFetchError, match="Prometheus timeout error"):
        fetch_range(conn, "up", START, START + 11_000 * MINUTE, MINUTE)
    assert conn.requests == 2


def test_arguments_checked_before_asking() -> None:
    """Naive times and non-positive steps are refused; an empty span asks nothing."""
    conn = connector()
    with pytest.raises(ValueError, match="timezone-aware"):
        fetch_range(conn, "up", START.replace(tzinfo=None))
    for step in (timedelta(0), timedelta(microseconds=999), -HOUR):
        with pytest.raises(ValueError, match="step of at least 1 ms"):
            fetch_range(conn, "up", step=step)
    assert fetch_range(conn, "up", END, START) == []
    assert conn.requests == 0
