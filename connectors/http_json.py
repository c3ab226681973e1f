"""Generic JSON-over-HTTP connector: one request, one JMESPath expression, one number.

Secret headers come from the environment, never from YAML: `OKRSYNC_<NAME>_HEADER_X_API_KEY`
(or `..._FILE`) becomes the header `X-Api-Key`. Connectors do not retry; okrsync.measure.retry does.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import jmespath
import requests
from jmespath.exceptions import JMESPathError

from okrsync.config.sources import HttpSource
from okrsync.connector import Query, Reading
from okrsync.errors import AuthError, FetchError
from okrsync.secrets import env_name, read_secret

from ._http import USER_AGENT, check_status, json_body, send

METHODS = ("GET", "POST")


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
        shown = "" if value is None else f" ({json.dumps(value)[:80]})"
        raise FetchError(f"{where} gave {_KINDS[type(value)]}{shown}; it must give one number")
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise FetchError(f"{where} gave the string {value[:80]!r}, not a number") from None
    else:
        number = float(value)
    if not math.isfinite(number):
        raise FetchError(f"{where} gave {value!r}, not a finite number")
    return number


class HttpJsonConnector:
    """Reads one number out of any JSON API answer with a JMESPath `extract`."""

    def __init__(self, name: str, config: HttpSource) -> None:
        self.name = name
        self.config = config
        self.requests = 0
        self._session = requests.Session()
        self._session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        self._session.headers.update(config.headers)
        self._secrets_loaded = False

    def _auth_hint(self) -> str:
        prefix = env_name(self.name, "HEADER_")
        return f"{prefix}AUTHORIZATION (or another {prefix}<HEADER> variable)"

    def _load_secrets(self) -> None:
        if not self._secrets_loaded:
            self._session.headers.update(secret_headers(self.name))
            self._secrets_loaded = True

    def fetch(self, query: Query) -> Reading:
        """GET (or POST) the URL, then extract one number from the JSON answer."""
        expression = query.get("extract")
        if not isinstance(expression, str) or not expression.strip():
            raise FetchError(f"{self.name}: an http key result needs `extract` (a JMESPath)")
        try:
            compiled = jmespath.compile(expression)
        except JMESPathError as exc:
            raise FetchError(f"{self.name}: bad extract {expression!r}: {exc}") from None
        method = str(query.get("method") or "GET").upper()
        if method not in METHODS:
            raise FetchError(f"{self.name}: method must be GET or POST, not {method}")
        body = query.get("body")
        if body is not None and method != "POST":
            raise FetchError(f"{self.name}: `body` is sent only with `method: POST`")
        url = self.config.url
        path = query.get("path")
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
        return Reading(to_number(value, f"{self.name}: extract {expression!r}"))

    def close(self) -> None:
        """Release pooled connections."""
        self._session.close()
