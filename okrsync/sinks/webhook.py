"""The webhook sender: one measurement per POST, bounded in time and in bytes read.

* Deadline: the sink's `timeout` covers connect, sending, headers and body together; a
  watchdog shuts the socket when it passes, so a server that drips bytes cannot outlast
  it. The answer is read up to `max_response_bytes`; no redirect is followed (the body
  and its signature go to the configured URL only).
* Outcomes are sorted here, in one place: 2xx delivered; 5xx, 408, 409, 429 (with its
  Retry-After), timeouts and network errors retryable; any other status a permanent
  failure recorded with the answer's start (secrets removed).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import socket
import ssl
import threading
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from okrsync.config.sinks import WebhookSink
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


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    retry_after: str | None = None


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the exact body bytes>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


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


def post(url: str, body: bytes, headers: dict[str, str], timeout: float, cap: int) -> Answer:
    """POST `body`; the status and at most `cap` bytes of the answer, within `timeout`."""
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
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read(cap)
        return Answer(response.status, data, response.getheader("Retry-After"))
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


def send(name: str, sink: WebhookSink, body: bytes, key: str) -> int:
    """Deliver one payload to webhook sink `name`; its HTTP status, or DeliveryError."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "okrsync",
        "Idempotency-Key": key,
    }
    try:
        secret = read_secret(env_name(name, "SECRET"))
    except OSError as exc:
        raise DeliveryError(str(exc), retryable=True) from None
    if secret:
        headers["X-Okrsync-Signature"] = signature(secret, body)
    answer = post(sink.url, body, headers, sink.timeout, sink.max_response_bytes)
    if 200 <= answer.status < 300:
        return answer.status
    text = redact(answer.body.decode("utf-8", errors="replace"))
    if secret:
        text = text.replace(secret, "***")
    shown = " ".join(text.split())[:SHOWN_BYTES]
    message = f"HTTP {answer.status}" + (f": {shown}" if shown else "")
    if answer.status >= 500 or answer.status in RETRYABLE_4XX:
        wait = retry_after(answer.retry_after)
        raise DeliveryError(message, answer.status, retryable=True, retry_after=wait)
    if 300 <= answer.status < 400:
        message += " (redirects are not followed: set the sink's url to where it points)"
    raise DeliveryError(message, answer.status, retryable=False)
