"""Prometheus: one instant PromQL query gives one number (optionally reduced over series);
a range query gives one per instant of a span, for backfills."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, ClassVar, Literal, TypeVar

import requests
from pydantic import Field

from okrsync.connector import (
    AuthError,
    FetchError,
    NoDataError,
    NonBlank,
    QueryBase,
    RangePoint,
    Reading,
    SourceBase,
    TransientFetchError,
    Window,
)
from okrsync.secrets import env_name, read_secret, redact, remember_basic

from ._http import USER_AGENT, Url, classify, json_body, send, snippet
from ._transport import mount

REDUCERS: dict[str, Callable[[list[float]], float]] = {
    "sum": math.fsum,
    "avg": lambda values: math.fsum(values) / len(values),
    "min": min,
    "max": max,
}
# errorTypes (and execution messages) that may pass on their own; the rest need a query fix
_TRANSIENT_TYPES = {"timeout", "canceled", "unavailable"}
_TRANSIENT_TEXT = ("deadline exceeded", "context canceled")
MAX_POINTS = 11_000
"""Instants one query_range request asks for: Prometheus refuses more than 11,000 points per
series ("exceeded maximum resolution of 11,000 points per timeseries")."""

T = TypeVar("T")
Sample = tuple[dict[str, str], str]
"""A series' labels and its value string at one instant."""


class PrometheusSource(SourceBase):
    """A Prometheus server; auth from OKRSYNC_<NAME>_USER/_PASSWORD or _TOKEN."""

    type: Literal["prometheus"] = "prometheus"
    url: Url = Field(description="Base URL, e.g. http://127.0.0.1:9090")


class PrometheusQuery(QueryBase):
    """A PromQL instant query giving one number (or several series and a `reduce`)."""

    query: NonBlank = Field(description="prometheus: PromQL instant query")
    reduce: Literal["sum", "avg", "min", "max"] | None = Field(
        None, description="prometheus: combine several series"
    )


class PrometheusConnector:
    """Runs instant queries at `{url}/api/v1/query`; auth from env (bearer or basic).

    `fetch_range` evaluates a query over a past span at `{url}/api/v1/query_range`, in
    chunks of at most MAX_POINTS instants (a RangeConnector, for `okrsync backfill`)."""

    source_model: ClassVar[type[PrometheusSource]] = PrometheusSource
    query_model: ClassVar[type[PrometheusQuery]] = PrometheusQuery
    main_query_key: ClassVar[str] = "query"
    max_range_points: ClassVar[int] = MAX_POINTS
    """Instants one range request asks at most (so a backfill's plan counts requests)."""

    def __init__(self, name: str, config: PrometheusSource) -> None:
        self.name = name
        self.config = config
        self.requests = 0
        self._url = config.url.rstrip("/") + "/api/v1/query"
        self._range_url = self._url + "_range"
        self._auth_hint = (
            f"{env_name(name, 'TOKEN')} or {env_name(name, 'USER')}/{env_name(name, 'PASSWORD')}"
        )
        self._session = requests.Session()
        self._session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        mount(self._session, config.timeout, config.max_response_bytes, config.url)
        self._auth_ready = False

    def _setup_auth(self) -> None:
        """Bearer token if OKRSYNC_<NAME>_TOKEN is set, else basic auth if _USER is set."""
        token_var, user_var, password_var = (
            env_name(self.name, suffix) for suffix in ("TOKEN", "USER", "PASSWORD")
        )
        try:
            token, user, password = (read_secret(v) for v in (token_var, user_var, password_var))
        except OSError as exc:
            raise AuthError(f"{self.name}: {exc}") from None
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"
        elif user:
            if password is None:
                raise AuthError(f"{self.name}: {user_var} is set but {password_var} is not")
            remember_basic(user, password)
            self._session.auth = (user, password)
        self._auth_ready = True

    def fetch(self, query: PrometheusQuery, window: Window) -> Reading:
        """The value of the PromQL query now (at `window.at` when set), reduced over series
        by `reduce` when given."""
        promql, reduce = query.query, query.reduce
        params = {"query": promql}
        if window.at is not None:
            params["time"] = _seconds(window.at.timestamp())
        return self._call(
            self._url,
            params,
            lambda data: self._reading(promql, reduce, data["resultType"], data["result"]),
        )

    def fetch_range(
        self,
        query: PrometheusQuery,
        window: Window,
        start: datetime,
        end: datetime,
        step: timedelta,
    ) -> list[RangePoint]:
        """The query at every instant start + k*step up to `end`, sorted by time, in requests
        of at most MAX_POINTS instants each; an instant no series has a sample at is absent."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("fetch_range needs timezone-aware start and end")
        if step < timedelta(milliseconds=1):  # the API's resolution
            raise ValueError(f"fetch_range needs a step of at least 1 ms, not {step}")
        start = start.astimezone(UTC)
        if end < start:
            return []
        count = (end - start) // step + 1
        points: list[RangePoint] = []
        for first in range(0, count, MAX_POINTS):
            last = min(first + MAX_POINTS, count) - 1
            params = {
                "query": query.query,
                "start": _seconds((start + first * step).timestamp()),
                "end": _seconds((start + last * step).timestamp()),
                "step": _seconds(step.total_seconds()),
            }
            by_instant = self._call(
                self._range_url,
                params,
                partial(
                    self._matrix, promql=query.query, start=start, step=step, first=first, last=last
                ),
            )
            points += (
                self._point(query, start + k * step, samples)
                for k, samples in sorted(by_instant.items())
            )
        return points

    def _call(self, url: str, params: dict[str, str], parse: Callable[[Any], T]) -> T:
        """One GET of the HTTP API: auth, errors sorted as `classify` does, and `parse` of the
        answer's `data`, its shape errors shown with the start of the answer."""
        if not self._auth_ready:
            self._setup_auth()
        self.requests += 1
        response = send(self._session, "GET", url, self.name, self.config.timeout, params=params)
        status = response.status_code
        api = _api_error(response)
        if api is not None and api[1] and status not in (401, 403, 429):
            raise TransientFetchError(f"{self.name}: {api[0]} (HTTP {status})")
        error = classify(
            self.name,
            status,
            response.headers,
            response.text,
            auth_hint=self._auth_hint,
            reason=response.reason or "",
            message=api[0] if api else None,
        )
        if error is not None:
            raise error
        body = json_body(response, self.name)
        if api is not None:
            raise FetchError(f"{self.name}: {api[0]} (HTTP {status})")
        try:
            return parse(body["data"])
        except ShapeError as exc:
            shown = snippet(response.text)
            raise FetchError(
                f"{self.name}: unexpected answer from Prometheus: expected {exc}, got {shown}"
            ) from None
        except (KeyError, IndexError, TypeError, ValueError):
            shown = snippet(response.text)
            raise FetchError(f"{self.name}: unexpected answer from Prometheus: {shown}") from None

    def _point(self, query: PrometheusQuery, at: datetime, samples: list[Sample]) -> RangePoint:
        """One instant of a range answer: its reading, or the error `fetch` would give there."""
        metrics = [metric for metric, _ in samples]
        if len(samples) > 1 and query.reduce is None:
            return RangePoint(at, error=self._several(query.query, metrics))
        try:
            values = [float(raw) for _, raw in samples]
        except ValueError:
            values = [math.nan]
        if not all(math.isfinite(v) for v in values):  # the message is built only then
            try:
                for m, raw in samples:
                    self._number(raw, f"{_labels(m)} at {at:%Y-%m-%dT%H:%M:%SZ}")
            except (FetchError, ValueError) as exc:
                return RangePoint(at, error=str(exc))
        if query.reduce is None:  # one series: the value is its sample, nothing to add
            return RangePoint(at, Reading(values[0]))
        answer = {
            "resultType": "matrix",
            "series": len(samples),
            "values": [
                {"metric": m, "value": v} for m, v in zip(metrics[:10], values, strict=False)
            ],
        }
        reduced = REDUCERS[query.reduce](values)
        note = f"{query.reduce} of {len(values)} series"
        return RangePoint(at, Reading(reduced, note=note, answer=answer))

    def _several(self, promql: str, metrics: list[dict[str, str]]) -> str:
        """Why several series and no `reduce` give no number."""
        shown = ", ".join(_labels(m) for m in metrics[:3])
        more = ", ..." if len(metrics) > 3 else ""
        return (
            f"{self.name}: {promql!r} gives {len(metrics)} series, not one ({shown}{more}): "
            "set `reduce: sum` (or avg, min, max) on the key result, "
            "or aggregate in PromQL, e.g. sum(...)"
        )

    def _reading(self, promql: str, reduce: str | None, kind: str, result: Any) -> Reading:
        """Turn a successful result into one finite number, or explain why it cannot be."""
        if kind == "scalar":
            value = self._number(_sample(result, "a scalar result"), "scalar")
            return Reading(value, answer={"resultType": "scalar", "series": 1, "value": value})
        if kind == "matrix":
            raise FetchError(
                f"{self.name}: {promql!r} gives a range vector: "
                "wrap it in e.g. avg_over_time(...) to get one number"
            )
        if kind != "vector":
            raise FetchError(f"{self.name}: {promql!r} gives a {kind}, not a number")
        if not isinstance(result, list) or not all(isinstance(s, dict) for s in result):
            raise ShapeError("a vector result: a list of {metric: {...}, value: [time, value]}")
        if not result:
            raise NoDataError(
                f"{self.name}: no series matched {promql!r}: "
                "check the metric name and labels, and that its target is scraped"
            )
        if len(result) > 1 and reduce is None:
            raise FetchError(self._several(promql, [s.get("metric", {}) for s in result]))
        values = [self._number(*_series(s)) for s in result]
        answer = {
            "resultType": "vector",
            "series": len(result),
            "values": [
                {"metric": s.get("metric", {}), "value": v}
                for s, v in zip(result[:10], values, strict=False)
            ],
        }
        if reduce is None:
            return Reading(values[0], answer=answer)
        return Reading(
            REDUCERS[reduce](values), note=f"{reduce} of {len(values)} series", answer=answer
        )

    def _matrix(
        self, data: Any, *, promql: str, start: datetime, step: timedelta, first: int, last: int
    ) -> dict[int, list[Sample]]:
        """A query_range answer's samples by instant number k (at start + k*step), each
        sample's time rounded to the nearest step; only instants `first`..`last` were asked."""
        kind = data["resultType"]
        if kind != "matrix":
            raise FetchError(
                f"{self.name}: query_range answered a {kind} for {promql!r}, "
                "not the matrix (one series per label set) it documents"
            )
        result = data["result"]
        if not isinstance(result, list) or not all(isinstance(s, dict) for s in result):
            raise ShapeError(
                "a matrix result: a list of {metric: {...}, values: [[time, value], ...]}"
            )
        origin, seconds = start.timestamp(), step.total_seconds()
        by_instant: dict[int, list[Sample]] = {}
        for series in result:
            metric, values = series.get("metric"), series.get("values")
            if not isinstance(metric, dict) or not isinstance(values, list):
                raise ShapeError(
                    'matrix elements {metric: {...}, values: [[<unix time>, "<value>"], ...]}'
                )
            for pair in values:
                raw = _sample(pair, "matrix samples")
                k = round((pair[0] - origin) / seconds)
                if not first <= k <= last:
                    raise ShapeError(f"samples between the asked start and end, not at {pair[0]}")
                by_instant.setdefault(k, []).append((metric, raw))
        return by_instant

    def _number(self, raw: Any, what: str) -> float:
        """A sample value (a string such as "42", "NaN" or "+Inf") as a finite float."""
        value = float(raw)
        if not math.isfinite(value):
            raise FetchError(
                f"{self.name}: {what} is {raw}, not a number (a division by zero or no data?)"
            )
        return value

    def close(self) -> None:
        """Release the connection pool."""
        self._session.close()


def _api_error(response: requests.Response) -> tuple[str, bool] | None:
    """Prometheus's own error (`status: error`) as text, and whether its type may pass on its
    own (a timeout, a cancelled query); None when the body is not one."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("status") != "error":
        return None
    kind, text = str(body.get("errorType", "")), str(body.get("error", ""))
    transient = kind in _TRANSIENT_TYPES or (
        kind == "execution" and any(t in text for t in _TRANSIENT_TEXT)
    )
    return f"Prometheus {kind} error: {redact(text)}", transient


class ShapeError(Exception):
    """An answer that is not shaped as the Prometheus HTTP API documents; says what was due."""


def _sample(raw: Any, what: str) -> str:
    """The value string of a documented `[<unix time>, "<value>"]` pair, else ShapeError."""
    if (
        not isinstance(raw, list)
        or len(raw) != 2
        or isinstance(raw[0], bool)
        or not isinstance(raw[0], int | float)
        or not isinstance(raw[1], str)
    ):
        raise ShapeError(f'{what} [<unix time>, "<value>"]')
    return raw[1]


def _series(series: dict[str, Any]) -> tuple[str, str]:
    """A vector element's value string and its labels (for messages), else ShapeError."""
    metric = series.get("metric")
    if not isinstance(metric, dict) or "value" not in series:
        raise ShapeError('vector elements {metric: {...}, value: [<unix time>, "<value>"]}')
    return _sample(series["value"], "a vector sample value"), _labels(metric)


def _labels(metric: dict[str, str]) -> str:
    """`name{k="v", ...}` for messages."""
    name = metric.get("__name__", "")
    pairs = ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name}{{{pairs}}}"


def _seconds(value: float) -> str:
    """Seconds (a Unix time or a step) as the HTTP API takes them, plain and to the
    millisecond: "1790812800", "1209600", "1.5" (never "1.2096e+06")."""
    return f"{value:.3f}".rstrip("0").rstrip(".")
