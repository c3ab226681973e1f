"""The webhook sender: one measurement per POST (the outbox payload as it is), signed
with HMAC-SHA256 when OKRSYNC_<SINK>_SECRET is set; bounded as transport.py says."""

from __future__ import annotations

import hashlib
import hmac

from okrsync.config.sinks import WebhookSink
from okrsync.sinks.transport import DeliveryError, outcome, post, sink_secret

__all__ = ["DeliveryError", "send", "signature"]


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the exact body bytes>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send(name: str, sink: WebhookSink, body: bytes, key: str) -> int:
    """Deliver one payload to webhook sink `name`; its HTTP status, or DeliveryError."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "okrsync",
        "Idempotency-Key": key,
    }
    secret = sink_secret(name, "SECRET")
    if secret:
        headers["X-Okrsync-Signature"] = signature(secret, body)
    answer = post(sink.url, body, headers, sink.timeout, sink.max_response_bytes)
    return outcome(answer, [secret or ""])
