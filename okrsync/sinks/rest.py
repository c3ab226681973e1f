"""The mirrors' HTTP client (requests, so tests replay the real APIs with `responses`),
and the progress text the mirrors write.

Bounded like the webhook: no redirect is followed (a credential goes to the configured
host only), at most `cap` bytes of an answer are read, `timeout` bounds connect and each
socket read, and the body is read in chunks that stop once the whole request has taken
`timeout` (requests has no whole-request deadline; headers are bounded per read only).
Rate limits are read here: a 403/429 with `x-ratelimit-remaining: 0` (GitHub) waits until
`x-ratelimit-reset`; otherwise answers are sorted by transport.outcome.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import requests

from okrsync.sinks.transport import Answer, DeliveryError, outcome, retry_after, shown
from okrsync.timefmt import utcnow


def call(
    session: requests.Session,
    method: str,
    url: str,
    *,
    body: Any = None,
    timeout: float,
    cap: int,
    secrets: list[str],
) -> tuple[int, Any]:
    """One request; (status, parsed JSON or None) of a 2xx answer, else DeliveryError."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    deadline = time.monotonic() + timeout
    try:
        with session.request(
            method,
            url,
            data=data,
            headers=headers,
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,
        ) as response:
            raw = _read(response, cap, deadline, timeout)
            got = {k.lower(): v for k, v in response.headers.items()}
            answer = Answer(response.status_code, raw, got.get("retry-after"), got)
    except requests.Timeout:
        raise DeliveryError(f"no answer within {timeout:g}s (timeout)", retryable=True) from None
    except (requests.RequestException, OSError) as exc:
        what = type(exc).__name__
        raise DeliveryError(f"network error: {what}", retryable=True) from None
    status = _rate_limited(answer, secrets) or outcome(answer, secrets)
    try:
        return status, json.loads(answer.body) if answer.body.strip() else None
    except ValueError:
        return status, None


def _read(response: requests.Response, cap: int, deadline: float, timeout: float) -> bytes:
    """At most `cap` bytes of the (decompressed) answer, in chunks, within the deadline: a
    server dripping bytes is cut off once the whole request has taken `timeout`."""
    out = bytearray()
    while len(out) < cap:
        if time.monotonic() > deadline:
            raise DeliveryError(f"no answer within {timeout:g}s (timeout)", retryable=True)
        chunk = response.raw.read(min(16384, cap - len(out)), decode_content=True)
        if not chunk:
            break
        out += chunk
    return bytes(out)


def _rate_limited(answer: Answer, secrets: list[str]) -> int:
    """Raise the retryable error of a rate-limit answer: 403/429 with
    `x-ratelimit-remaining: 0` (GitHub's primary limit) or a 403 with Retry-After (its
    secondary limit); 0 for any other answer."""
    exhausted = answer.headers.get("x-ratelimit-remaining") == "0"
    if answer.status not in (403, 429) or not (exhausted or answer.retry_after):
        return 0
    wait = retry_after(answer.retry_after)
    if wait is None and exhausted:
        with contextlib.suppress(KeyError, ValueError):
            wait = max(0.0, float(answer.headers["x-ratelimit-reset"]) - utcnow().timestamp())
    text = shown(answer, secrets)
    message = f"HTTP {answer.status}: {text} (rate limited)"
    raise DeliveryError(message, answer.status, retryable=True, retry_after=wait)


def summary(payload: dict[str, Any]) -> str:
    """`api-uptime: 99.2 % (target 99.9, progress 87%, on_track) at 2026-11-02T12:00:00Z`."""
    unit = f" {payload['unit']}" if payload.get("unit") else ""
    parts = []
    if payload.get("target") is not None:
        parts.append(f"target {payload['target']:g}{unit}")
    if payload.get("progress") is not None:
        parts.append(f"progress {round(100 * payload['progress'])}%")
    if payload.get("status"):
        parts.append(str(payload["status"]))
    detail = f" ({', '.join(parts)})" if parts else ""
    return f"{payload['kr_id']}: {payload['value']:g}{unit}{detail} at {payload['measured_at']}"
