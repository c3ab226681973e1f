"""HTTP plumbing shared by connectors: the one classifier that sorts answers into okrsync
errors (with the one Retry-After parser and HTML check), sending, and network errors.
The transport under every session (deadline, byte cap, origin) is in `_transport`."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Annotated, Any
from urllib.parse import urlparse, urlsplit, urlunsplit

import requests
from pydantic import AfterValidator

from okrsync.connector import AuthError, FetchError, RateLimitedError, TransientFetchError
from okrsync.secrets import redact

from ._transport import ConnectionLost, ResponseTooLarge

USER_AGENT = "okrsync/0.1 (+https://github.com/okrsync/okrsync)"


def _http_url(value: str) -> str:
    parts = urlparse(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"'{value}' is not an http(s) URL, e.g. http://127.0.0.1:9090")
    return value


Url = Annotated[str, AfterValidator(_http_url)]
"""An http(s) URL with a host, as a source model field."""


SNIPPET = 200  # characters of a server's raw text shown in an error
MESSAGE = 1000  # characters of an API's own error message (it is what people need to read)
SECONDARY_LIMIT_WAIT = 60.0  # GitHub's advice when a rate-limit 403 names no wait


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value by case-insensitive name."""
    wanted = name.lower()
    return next((str(v) for k, v in headers.items() if k.lower() == wanted), None)


def retry_after(headers: Mapping[str, str], clock: Callable[[], float] = time.time) -> float | None:
    """Seconds the server asked us to wait: `Retry-After` (seconds or an HTTP date), else
    the time until `x-ratelimit-reset` when `x-ratelimit-remaining` is 0; None if neither."""
    raw = header(headers, "Retry-After")
    if raw is not None:
        with contextlib.suppress(ValueError):
            return max(0.0, float(raw))
        with contextlib.suppress(TypeError, ValueError):
            return max(0.0, parsedate_to_datetime(raw).timestamp() - clock())
    reset = header(headers, "x-ratelimit-reset")
    if header(headers, "x-ratelimit-remaining") == "0" and reset is not None:
        with contextlib.suppress(ValueError):
            return max(1.0, float(reset) - clock())
    return None


def is_html(headers: Mapping[str, str], body: str) -> bool:
    """True for the HTML pages proxies and login walls send instead of JSON."""
    ctype = header(headers, "Content-Type") or ""
    return "html" in ctype or body.lstrip()[:15].lower().startswith(("<!doctype", "<html"))


def snippet(text: str, limit: int = SNIPPET) -> str:
    """A server's text for an error message: one line, secrets redacted, then cut short."""
    return redact(" ".join(text.split()))[:limit]


def classify(
    source: str,
    status: int,
    headers: Mapping[str, str],
    body: str,
    *,
    auth_hint: str,
    reason: str = "",
    message: str | None = None,
    where: str | None = None,
    hints: Mapping[int, str] | None = None,
    clock: Callable[[], float] = time.time,
) -> FetchError | None:
    """The okrsync error an HTTP answer means (None for success): the one place status
    codes are sorted into retryable, rate-limited, auth and permanent failures.

    `message` is the API's own error text when the connector could read one (else the
    body is shown); `where` (e.g. a path) names what was asked; `hints` are the
    connector's advice for particular 4xx statuses; `auth_hint` names the env variables.
    """
    if status < 400:
        return None
    html = is_html(headers, body)
    detail = snippet(body) if message is None else snippet(message, MESSAGE)
    wait = retry_after(headers, clock)
    if status == 403 and wait is None and "rate limit" in detail.lower():
        wait = SECONDARY_LIMIT_WAIT
    if status == 429 or (status == 403 and wait is not None):
        after = f"; retry after {wait:g}s" if wait is not None else ""
        return RateLimitedError(f"{source}: rate limited (HTTP {status}){after}", wait)
    if status in (401, 403):
        said = detail if message else reason
        access = " and its access" if status == 403 else ""
        return AuthError(f"{source}: HTTP {status} {said}: check {auth_hint}{access}")
    if status >= 500:
        shown = "an HTML error page (proxy?)" if html else detail
        return TransientFetchError(f"{source}: server error HTTP {status}: {shown}", wait)
    if html:
        return FetchError(f"{source}: HTTP {status} with an HTML page instead of JSON (proxy?)")
    if hints and status in hints:
        return FetchError(f"{source}: {hints[status]}")
    asked = f" for {where}" if where else ""
    return FetchError(f"{source}: HTTP {status}{asked}: {detail}".rstrip(": "))


def check_status(response: requests.Response, source: str, auth_hint: str) -> None:
    """Raise the error a requests response means; return quietly on success."""
    error = classify(
        source,
        response.status_code,
        response.headers,
        response.text,
        auth_hint=auth_hint,
        reason=response.reason or "",
    )
    if error is not None:
        raise error


def json_body(response: requests.Response, source: str) -> Any:
    """The decoded JSON body, or a clear error when the body is not JSON."""
    if is_html(response.headers, response.text):
        raise FetchError(
            f"{source}: got an HTML page (HTTP {response.status_code}) instead of JSON: "
            "is the URL right, or is a proxy or login page in the way?"
        )
    try:
        return response.json()
    except ValueError:
        raise FetchError(
            f"{source}: answer is not JSON (HTTP {response.status_code}): {snippet(response.text)}"
        ) from None


TRANSPORT_ERRORS = (
    requests.Timeout,
    requests.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    requests.TooManyRedirects,
    ResponseTooLarge,
)
"""What a request can raise instead of giving an answer; `network_error` explains each."""


def safe_url(url: str) -> str:
    """`url` fit for a message: any `user:password@` dropped, known secrets redacted."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        url = urlunsplit(parts._replace(netloc=host))
    except ValueError:
        url = url.rpartition("@")[2] if "@" in url else url
    return redact(url)


def network_error(
    exc: requests.RequestException, source: str, url: str, timeout: float
) -> FetchError:
    """The okrsync error for a request that got no (whole) HTTP answer: timeout, refused,
    DNS, TLS, a connection lost mid-answer, an answer past `max_response_bytes`.

    A TLS/certificate failure, an undecodable body and a too-large answer are permanent
    (retrying will not fix them); the rest may pass.
    """
    where = safe_url(url)
    if isinstance(exc, requests.Timeout):
        return TransientFetchError(f"{source}: no answer within {timeout:g}s (timeout)")
    if isinstance(exc, ResponseTooLarge):
        return FetchError(f"{source}: {exc} (max_response_bytes) from {where}")
    if isinstance(exc, requests.TooManyRedirects):
        return FetchError(f"{source}: too many redirects from {where}: check the source's url")
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return FetchError(f"{source}: the answer from {where} could not be decompressed")
    if isinstance(exc, requests.exceptions.SSLError):
        return FetchError(
            f"{source}: TLS/certificate error at {where}: check the url's scheme and "
            "the server's certificate (REQUESTS_CA_BUNDLE for a private CA)"
        )
    if isinstance(exc, ConnectionLost | requests.exceptions.ChunkedEncodingError):
        return TransientFetchError(
            f"{source}: connection lost while reading the answer from {where}"
        )
    text = str(exc).lower()
    if "refused" in text:
        reason = "connection refused"
    elif "name or service not known" in text or "name resolution" in text:
        reason = "cannot resolve the host name"
    elif "reset" in text or "aborted" in text:
        reason = "connection lost"
    else:
        reason = "cannot connect"
    return TransientFetchError(
        f"{source}: {reason} at {where}: is the server up, the source's url right, "
        "and the network (or HTTPS_PROXY) reachable?"
    )


def send(
    session: requests.Session, method: str, url: str, source: str, timeout: float, **kwargs: Any
) -> requests.Response:
    """One request, with network failures turned into transient okrsync errors."""
    try:
        return session.request(method, url, timeout=timeout, **kwargs)
    except TRANSPORT_ERRORS as exc:
        raise network_error(exc, source, url, timeout) from None
