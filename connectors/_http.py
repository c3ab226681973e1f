"""HTTP plumbing shared by connectors: one place that sorts responses into okrsync errors."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlparse

import requests
from pydantic import AfterValidator

from okrsync.errors import AuthError, FetchError, RateLimitedError, TransientFetchError
from okrsync.secrets import redact

USER_AGENT = "okrsync/0.1 (+https://github.com/okrsync/okrsync)"


def _http_url(value: str) -> str:
    parts = urlparse(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"'{value}' is not an http(s) URL, e.g. http://127.0.0.1:9090")
    return value


Url = Annotated[str, AfterValidator(_http_url)]
"""An http(s) URL with a host, as a source model field."""


def retry_after_seconds(response: requests.Response) -> float | None:
    """Seconds the server asked us to wait (`Retry-After` in seconds), if it said."""
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


def _snippet(response: requests.Response) -> str:
    text = " ".join(response.text.split())
    return redact(text[:200])


def is_html(response: requests.Response) -> bool:
    """True for the HTML error pages proxies and login walls send instead of JSON."""
    ctype = response.headers.get("Content-Type", "")
    return "html" in ctype or response.text.lstrip()[:15].lower().startswith(("<!doctype", "<html"))


def check_status(response: requests.Response, source: str, auth_hint: str) -> None:
    """Raise the okrsync error a non-2xx response means; return quietly on success.

    `auth_hint` names the environment variables to check on 401/403.
    """
    status = response.status_code
    if status < 400:
        return
    if status == 429:
        wait = retry_after_seconds(response)
        after = f"; retry after {wait:g}s" if wait is not None else ""
        raise RateLimitedError(f"{source}: rate limited (HTTP 429){after}", wait)
    if status in (401, 403):
        raise AuthError(f"{source}: HTTP {status} {response.reason}: check {auth_hint}")
    if status >= 500:
        detail = "an HTML error page (proxy?)" if is_html(response) else _snippet(response)
        wait = retry_after_seconds(response)
        raise TransientFetchError(f"{source}: server error HTTP {status}: {detail}", wait)
    if is_html(response):
        raise FetchError(f"{source}: HTTP {status} with an HTML page instead of JSON (proxy?)")
    raise FetchError(f"{source}: HTTP {status}: {_snippet(response)}")


def json_body(response: requests.Response, source: str) -> Any:
    """The decoded JSON body, or a clear error when the body is not JSON."""
    if is_html(response):
        raise FetchError(
            f"{source}: got an HTML page (HTTP {response.status_code}) instead of JSON: "
            "is the URL right, or is a proxy or login page in the way?"
        )
    try:
        return response.json()
    except ValueError:
        raise FetchError(
            f"{source}: answer is not JSON (HTTP {response.status_code}): {_snippet(response)}"
        ) from None


def network_error(
    exc: requests.RequestException, source: str, url: str, timeout: float
) -> FetchError:
    """The okrsync error for a request that got no HTTP answer (timeout, refused, DNS, TLS).

    A TLS/certificate failure is permanent (retrying will not fix it); the rest may pass.
    """
    if isinstance(exc, requests.Timeout):
        return TransientFetchError(f"{source}: no answer within {timeout:g}s (timeout)")
    if isinstance(exc, requests.exceptions.SSLError):
        return FetchError(
            f"{source}: TLS/certificate error at {redact(url)}: check the url's scheme and "
            "the server's certificate (REQUESTS_CA_BUNDLE for a private CA)"
        )
    text = str(exc).lower()
    if "refused" in text:
        reason = "connection refused"
    elif "name or service not known" in text or "name resolution" in text:
        reason = "cannot resolve the host name"
    else:
        reason = "cannot connect"
    return TransientFetchError(
        f"{source}: {reason} at {redact(url)}: is the server up, the source's url right, "
        "and the network (or HTTPS_PROXY) reachable?"
    )


def send(
    session: requests.Session, method: str, url: str, source: str, timeout: float, **kwargs: Any
) -> requests.Response:
    """One request, with network failures turned into transient okrsync errors."""
    try:
        return session.request(method, url, timeout=timeout, **kwargs)
    except (requests.Timeout, requests.ConnectionError) as exc:
        raise network_error(exc, source, url, timeout) from None
