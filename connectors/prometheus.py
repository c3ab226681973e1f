"""Prometheus: one instant PromQL query gives one number (optionally reduced over series)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import requests
from pydantic import Field

from okrsync.connector import (
    AuthError,
    FetchError,
    NonBlank,
    QueryBase,
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
    """Runs instant queries at `{url}/api/v1/query`; auth from env (bearer or basic)."""

    source_model: ClassVar[type[PrometheusSource]] = PrometheusSource
    query_model: ClassVar[type[PrometheusQuery]] = PrometheusQuery

    def __init__(self, name: str, config: PrometheusSource) -> None:
        self.name = name
        self.config = config
        self.requests = 0
        self._url = config.url.rstrip("/") + "/api/v1/query"
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
        """The value of the PromQL query now, reduced over series by `reduce` when given."""
        promql, reduce = query.query, query.reduce
        if not self._auth_ready:
            self._setup_auth()
        self.requests += 1
        params = {"query": promql}
        response = send(
            self._session, "GET", self._url, self.name, self.config.timeout, params=params
        )
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
            return self._reading(promql, reduce, body["data"]["resultType"], body["data"]["result"])
        except ShapeError as exc:
            shown = snippet(response.text)
            raise FetchError(
                f"{self.name}: unexpected answer from Prometheus: expected {exc}, got {shown}"
            ) from None
        except (KeyError, IndexError, TypeError, ValueError):
            shown = snippet(response.text)
            raise FetchError(f"{self.name}: unexpected answer from Prometheus: {shown}") from None

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
            raise FetchError(
                f"{self.name}: no series matched {promql!r}: "
                "check the metric name and labels, and that its target is scraped"
            )
        if len(result) > 1 and reduce is None:
            shown = ", ".join(_labels(s.get("metric", {})) for s in result[:3])
            more = ", ..." if len(result) > 3 else ""
            raise FetchError(
                f"{self.name}: {promql!r} gives {len(result)} series, not one ({shown}{more}): "
                "set `reduce: sum` (or avg, min, max) on the key result, "
                "or aggregate in PromQL, e.g. sum(...)"
            )
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
