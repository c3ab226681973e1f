"""The github-issue mirror: ONE managed progress comment per KR on a tracking issue, edited
in place, never a new comment per run.

The comment carries a hidden marker, `<!-- okrsync:KR_ID -->`. Each delivery looks for it
(`GET /repos/{o}/{r}/issues/{n}/comments`, 100 a page, at most MAX_PAGES), then edits it
(`PATCH /repos/{o}/{r}/issues/comments/{id}`) or, the first time, creates it (`POST
/repos/{o}/{r}/issues/{n}/comments`). Editing is idempotent, so a retry after a crash
changes nothing. Token from OKRSYNC_<SINK>_TOKEN; rate limits are read in rest.py.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from okrsync.config.sinks import GithubIssueSink
from okrsync.secrets import env_name
from okrsync.sinks.rest import call, summary
from okrsync.sinks.transport import DeliveryError, sink_secret

MAX_PAGES = 20
API_VERSION = "2022-11-28"


def marker(kr_id: str) -> str:
    return f"<!-- okrsync:{kr_id} -->"


def text(payload: dict[str, Any]) -> str:
    """The managed comment: the marker, the KR's latest progress, and who keeps it."""
    return (
        f"{marker(payload['kr_id'])}\n**{summary(payload)}**\n\n"
        f"<sub>Kept up to date by okrsync (measurement {payload['measurement_id']}); "
        "this comment is edited in place.</sub>"
    )


def session(name: str) -> tuple[requests.Session, list[str]]:
    token = sink_secret(name, "TOKEN")
    if not token:
        raise DeliveryError(
            f"no GitHub token: set {env_name(name, 'TOKEN')} (or its _FILE form) to a token "
            "that may write issues of the repository",
            retryable=False,
        )
    s = requests.Session()
    s.trust_env = False
    s.headers.update(
        {
            "User-Agent": "okrsync",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "Authorization": f"Bearer {token}",
        }
    )
    return s, [token]


def send(name: str, sink: GithubIssueSink, body: bytes, key: str) -> int:
    """Create or edit the KR's managed comment; the HTTP status, or DeliveryError."""
    payload = json.loads(body)
    number = payload.get("issue")
    if not isinstance(number, int):
        raise DeliveryError("no GitHub issue number on the push target", retryable=False)
    s, secrets = session(name)
    repo = f"{sink.url.rstrip('/')}/repos/{sink.repo}"
    limits: dict[str, Any] = {"timeout": sink.timeout, "cap": sink.max_response_bytes}
    new = {"body": text(payload)}
    with s:
        found = _find(
            s, f"{repo}/issues/{number}/comments", marker(payload["kr_id"]), secrets, limits
        )
        if found is not None:
            url = f"{repo}/issues/comments/{found}"
            return call(s, "PATCH", url, body=new, secrets=secrets, **limits)[0]
        url = f"{repo}/issues/{number}/comments"
        return call(s, "POST", url, body=new, secrets=secrets, **limits)[0]


def _find(
    s: requests.Session, url: str, mark: str, secrets: list[str], limits: dict[str, Any]
) -> int | None:
    """The id of the comment holding `mark`, oldest first, or None."""
    for page in range(1, MAX_PAGES + 1):
        _, comments = call(s, "GET", f"{url}?per_page=100&page={page}", secrets=secrets, **limits)
        if not isinstance(comments, list):
            raise DeliveryError("GitHub answered no list of comments", retryable=True)
        for comment in comments:
            if isinstance(comment, dict) and mark in str(comment.get("body") or ""):
                return int(comment["id"])
        if len(comments) < 100:
            return None
    raise DeliveryError(
        f"no okrsync comment in the first {MAX_PAGES * 100} comments of the issue", retryable=False
    )
