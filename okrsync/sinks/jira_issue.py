"""The jira-issue mirror: the Jira issue that stands for a KR gets the value in a number
field (`PUT /rest/api/2/issue/{key}` `{"fields": {FIELD: value}}`, 204) and/or a comment
(`POST /rest/api/2/issue/{key}/comment` `{"body": ...}`, 201) naming the measurement id.

Credentials as the jira source: OKRSYNC_<SINK>_USER + _TOKEN is basic auth (Cloud: email
and API token), _TOKEN alone a bearer PAT (Data Center). API v2 is on both.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import requests

from okrsync.config.sinks import JiraIssueSink
from okrsync.secrets import env_name, remember_basic
from okrsync.sinks.rest import call, summary
from okrsync.sinks.transport import DeliveryError, sink_secret


def session(name: str) -> tuple[requests.Session, list[str]]:
    """A session authenticated as sink `name`'s env says, and the secrets it holds."""
    user, token = sink_secret(name, "USER"), sink_secret(name, "TOKEN")
    if not token:
        stem = env_name(name, "")
        raise DeliveryError(
            f"no Jira credentials: set {stem}USER (email) + {stem}TOKEN (API token) for "
            f"Cloud, or {stem}TOKEN (a personal access token) for Data Center",
            retryable=False,
        )
    s = requests.Session()
    s.trust_env = False  # no netrc credentials, no proxy from the environment
    s.headers.update({"User-Agent": "okrsync", "Accept": "application/json"})
    if user:
        remember_basic(user, token)
        s.auth = (user, token)
    else:
        s.headers["Authorization"] = f"Bearer {token}"
    return s, [token]


def send(name: str, sink: JiraIssueSink, body: bytes, key: str) -> int:
    """Mirror one payload into its Jira issue; the last HTTP status, or DeliveryError."""
    payload = json.loads(body)
    issue = payload.get("issue")
    if not issue or not (payload.get("field") or payload.get("comment")):
        raise DeliveryError("no Jira issue and field/comment on the push target", retryable=False)
    s, secrets = session(name)
    base = f"{sink.url.rstrip('/')}/rest/api/2/issue/{quote(str(issue), safe='')}"
    status = 0
    with s:
        if payload.get("field"):
            fields = {"fields": {payload["field"]: payload["value"]}}
            status, _ = call(
                s, "PUT", base, body=fields, timeout=sink.timeout,
                cap=sink.max_response_bytes, secrets=secrets,
            )  # fmt: skip
        if payload.get("comment"):
            text = f"{summary(payload)} (okrsync measurement {payload['measurement_id']})"
            status, _ = call(
                s, "POST", f"{base}/comment", body={"body": text}, timeout=sink.timeout,
                cap=sink.max_response_bytes, secrets=secrets,
            )  # fmt: skip
    return status
