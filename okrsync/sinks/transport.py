"""The one bounded HTTP client of the sinks, and the one place answers are sorted.

* Deadline: `timeout` covers connect, sending, headers and body together; a watchdog
  shuts the socket when it passes, so a server that drips bytes cannot outlast it. The
  answer is read up to `cap` bytes; no redirect is followed (a body, a signature or a key
  goes to the configured URL only).
* `outcome`: 2xx delivered; 5xx, 408, 409, 429 (with its Retry-After), timeouts and
  network errors retryable; any other status a permanent failure recorded with the
  answer's start (secrets removed).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from okrsync.secrets import env_name, read_secret, redact
from okrsync.timefmt import utcnow

SHOWN_BYTES = 500
RETRYABLE_4XX = frozenset({408, 409, 429})


class DeliveryError(Exception):
    """An attempt that did not deliver; `retryable` says whether to try again."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        *,
        retryable: bool,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(redact(message))
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


def sink_secret(sink: str, suffix: str) -> str | None:
    """`OKRSYNC_<SINK>_<SUFFIX>` (or its _FILE form); an unreadable file is a retryable
    DeliveryError (it may be mounted later), never a crash of the delivery step."""
    try:
        return read_secret(env_name(sink, suffix))
    except OSError as exc:
        raise DeliveryError(str(exc), retryable=True) from None


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    retry_after: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (a number or an HTTP date); None if absent/bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - utcnow()).total_seconds())
    except (TypeError, ValueError, OverflowError):
        return None


def request(
    method: str, url: str, body: bytes, headers: dict[str, str], timeout: float, cap: int
) -> Answer:
    """Send one request; the status and at most `cap` bytes of the answer, in `timeout`."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname or ""
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(
            host, parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    expired = threading.Event()

    def cut() -> None:
        expired.set()
        sock = conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(timeout, cut)
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read(cap)
        got = {k.lower(): v for k, v in response.getheaders()}
        return Answer(response.status, data, got.get("retry-after"), got)
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set() or isinstance(exc, TimeoutError | socket.timeout):
            raise DeliveryError(
                f"no answer within {timeout:g}s (timeout)", retryable=True
            ) from None
        what = type(exc).__name__
        raise DeliveryError(f"network error: {what}: {exc}", retryable=True) from None
    finally:
        watchdog.cancel()
        conn.close()


def post(url: str, body: bytes, headers: dict[str, str], timeout: float, cap: int) -> Answer:
    """POST `body` (see `request`)."""
    return request("POST", url, body, headers, timeout, cap)


def shown(answer: Answer, secrets: list[str]) -> str:
    """The start of an answer's text, secrets removed, whitespace folded."""
    text = redact(answer.body.decode("utf-8", errors="replace"))
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return " ".join(text.split())[:SHOWN_BYTES]


def outcome(answer: Answer, secrets: list[str]) -> int:
    """The status of a 2xx answer; else the DeliveryError it means, raised."""
    if 200 <= answer.status < 300:
        return answer.status
    text = shown(answer, secrets)
    message = f"HTTP {answer.status}" + (f": {text}" if text else "")
    if answer.status >= 500 or answer.status in RETRYABLE_4XX:
        wait = retry_after(answer.retry_after)
        raise DeliveryError(message, answer.status, retryable=True, retry_after=wait)
    if 300 <= answer.status < 400:
        message += " (redirects are not followed: set the sink's url to where it points)"
    raise DeliveryError(message, answer.status, retryable=False)
