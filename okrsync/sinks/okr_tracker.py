"""The okr-tracker sender (github.com/oslokommune/okr-tracker, functions/api/routes/keyres.js
and public/openapi.yaml): `POST {url}/keyres/{id}` with `{"progress": <the KR's value>}`.

Authentication as its OpenAPI description says: the API gateway key in `x-api-key`
(OKRSYNC_<SINK>_TOKEN) and, where set, the integration client's `okr-client-id` /
`okr-client-secret` (OKRSYNC_<SINK>_CLIENT_ID / _CLIENT_SECRET). It answers 200 with text,
400 `{"message": "Invalid request data", ...}` for a missing or negative number, 401 for
an unknown client, 404 with text for an unknown id: sorted like any answer (transport.py).
It keeps only the latest value, so the outbox supersedes older undelivered ones.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from okrsync.config.sinks import OkrTrackerSink
from okrsync.secrets import env_name
from okrsync.sinks.transport import DeliveryError, outcome, post, sink_secret

HEADERS = {"TOKEN": "x-api-key", "CLIENT_ID": "okr-client-id", "CLIENT_SECRET": "okr-client-secret"}


def credentials(name: str) -> dict[str, str]:
    """The auth headers of sink `name` that are set in the environment."""
    out: dict[str, str] = {}
    for suffix, header in HEADERS.items():
        value = sink_secret(name, suffix)
        if value:
            out[header] = value
    if not out:
        stem = env_name(name, "")
        raise DeliveryError(
            f"no okr-tracker credentials: set {stem}TOKEN (the API key) and/or "
            f"{stem}CLIENT_ID + {stem}CLIENT_SECRET (or their _FILE forms)",
            retryable=False,
        )
    return out


def send(name: str, sink: OkrTrackerSink, body: bytes, key: str) -> int:
    """Send the value of one outbox payload to okr-tracker sink `name`; its HTTP status,
    or DeliveryError. (okr-tracker takes no idempotency key: it keeps the latest value.)"""
    payload = json.loads(body)
    external = payload.get("external_id")
    if not external:
        raise DeliveryError("no okr-tracker id: write {sink: NAME, id: ...}", retryable=False)
    auth = credentials(name)
    url = f"{sink.url.rstrip('/')}/keyres/{quote(str(external), safe='')}"
    headers = {"Content-Type": "application/json", "User-Agent": "okrsync", **auth}
    data = json.dumps({"progress": payload["value"]}).encode()
    answer = post(url, data, headers, sink.timeout, sink.max_response_bytes)
    return outcome(answer, list(auth.values()))
