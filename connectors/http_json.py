"""Generic JSON-over-HTTP connector: one request, one JMESPath expression, one number.

Secret headers come from the environment, never from YAML: `OKRSYNC_<NAME>_HEADER_X_API_KEY`
(or `..._FILE`) becomes the header `X-Api-Key`. Connectors do not retry; okrsync.measure.retry does.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, ClassVar, Literal

import jmespath
import requests
from jmespath.exceptions import JMESPathError
from pydantic import Field, field_validator, model_validator

from okrsync.connector import (
    AuthError,
    FetchError,
    NonBlank,
    QueryBase,
    Reading,
    SourceBase,
    Window,
)
from okrsync.secrets import SECRET_HEADER, env_name, read_secret

from ._http import USER_AGENT, Url, check_status, json_body, send, snippet
from ._transport import mount


def header_name(env_suffix: str) -> str:
    """`X_API_KEY` -> `X-Api-Key`: `_` becomes `-`, each word title-cased."""
    return "-".join(word.capitalize() for word in env_suffix.split("_") if word)


def secret_headers(source: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """Headers from `OKRSYNC_<SOURCE>_HEADER_*` (and `*_FILE`) variables, by header name."""
    env = dict(os.environ) if environ is None else environ
    prefix = env_name(source, "HEADER_")
    suffixes = set()
    for key in env:
        if key.startswith(prefix) and len(key) > len(prefix):
            suffix = key[len(prefix) :]
            suffixes.add(suffix.removesuffix("_FILE") if suffix.endswith("_FILE") else suffix)
    headers: dict[str, str] = {}
    for suffix in sorted(suffixes):
        if not suffix:
            continue
        try:
            value = read_secret(prefix + suffix, env)
        except OSError as exc:
            raise AuthError(f"{source}: {exc}") from None
        if value:
            headers[header_name(suffix)] = value
    return headers


_KINDS: dict[type, str] = {
    bool: "a boolean",
    type(None): "nothing: does the expression match the answer's shape?",
    list: "a list",
    dict: "an object",
}


def to_number(value: Any, where: str) -> float:
    """The one finite number an extract gave (a numeric string is accepted), else a clear error."""
    if type(value) in _KINDS:
        shown = "" if value is None else f" ({snippet(json.dumps(value), 80)})"
        raise FetchError(f"{where} gave {_KINDS[type(value)]}{shown}; it must give one number")
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            shown = snippet(value, 80)
            raise FetchError(f"{where} gave the string {shown!r}, not a number") from None
    else:
        number = float(value)
    if not math.isfinite(number):
        raise FetchError(f"{where} gave {value!r}, not a finite number")
    return number


class HttpSource(SourceBase):
    """Any JSON API; secret headers from OKRSYNC_<NAME>_HEADER_<HEADER_NAME>."""

    type: Literal["http"] = "http"
    url: Url
    headers: dict[str, str] = Field(default_factory=dict, description="Non-secret headers.")

    @field_validator("headers")
    @classmethod
    def _no_secret_headers(cls, value: dict[str, str], info: Any) -> dict[str, str]:
        """Secret-looking headers never come from YAML (`validate` applies the same rule to
        every source type, at the header's line); the message never shows the value."""
        source = (info.context or {}).get("source")
        for name in value:
            if SECRET_HEADER.search(name):
                suffix = "HEADER_" + "".join(c if c.isalnum() else "_" for c in name).upper()
                variable = env_name(source, suffix) if source else f"OKRSYNC_<SOURCE>_{suffix}"
                raise ValueError(f"header '{name}' holds a secret: set {variable} instead")
        return value


class HttpQuery(QueryBase):
    """One request (GET, or POST with a JSON body) and a JMESPath giving one number."""

    extract: NonBlank = Field(description="http: JMESPath expression yielding a number")
    path: str | None = Field(None, description="http: appended to the source url")
    method: Literal["GET", "POST"] | None = Field(None, description="http: GET (default) or POST")
    body: dict[str, Any] | None = Field(None, description="http: JSON body for POST")

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("extract")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            jmespath.compile(value)
        except JMESPathError as exc:
            why = str(exc).splitlines()[0].removeprefix("Invalid jmespath expression: ")
            why = why.lower().rstrip(": ")
            raise ValueError(f"{value!r} is not a JMESPath expression: {why}") from None
        return value

    @model_validator(mode="after")
    def _body_needs_post(self) -> HttpQuery:
        if self.body is not None and self.method != "POST":
            raise ValueError("`body` is sent only with `method: POST`")
        return self


class HttpJsonConnector:
    """Reads one number out of any JSON API answer with a JMESPath `extract`."""

    source_model: ClassVar[type[HttpSource]] = HttpSource
    query_model: ClassVar[type[HttpQuery]] = HttpQuery
    as_of_hint: ClassVar[str] = "put {now} in the request's path, params or body"
    """How to write a query that answers for a past day (`okrsync backfill`)."""

    def __init__(self, name: str, config: HttpSource) -> None:
        self.name = name
        self.config = config
        self.requests = 0
        self._session = requests.Session()
        self._session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        self._session.headers.update(config.headers)
        self._adapter = mount(self._session, config.timeout, config.max_response_bytes, config.url)
        self._secrets_loaded = False

    def _auth_hint(self) -> str:
        prefix = env_name(self.name, "HEADER_")
        return f"{prefix}AUTHORIZATION (or another {prefix}<HEADER> variable)"

    def _load_secrets(self) -> None:
        if not self._secrets_loaded:
            loaded = secret_headers(self.name)
            self._adapter.secret_headers.update(name.lower() for name in loaded)
            self._session.headers.update(loaded)
            self._secrets_loaded = True

    def fetch(self, query: HttpQuery, window: Window) -> Reading:
        """GET (or POST) the URL, then extract one number from the JSON answer."""
        expression, body, path = query.extract, query.body, query.path
        compiled = jmespath.compile(expression)
        method = query.method or "GET"
        url = self.config.url
        if path:
            url = url.rstrip("/") + "/" + str(path).lstrip("/")
        self._load_secrets()
        kwargs: dict[str, Any] = {"json": body} if body is not None else {}
        self.requests += 1
        response = send(self._session, method, url, self.name, self.config.timeout, **kwargs)
        check_status(response, self.name, self._auth_hint())
        data = json_body(response, self.name)
        try:
            value = compiled.search(data)
        except JMESPathError as exc:
            raise FetchError(f"{self.name}: extract {expression!r} failed: {exc}") from None
        number = to_number(value, f"{self.name}: extract {expression!r}")
        return Reading(number, answer={"extract": expression, "url": url, "value": value})

    def close(self) -> None:
        """Release pooled connections."""
        self._session.close()
