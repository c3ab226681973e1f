"""The github-issue mirror against a `responses` fake shaped like GitHub's REST API
(issue comments; rate-limit headers as PyGithub's recorded exchanges show them): one
managed comment per KR, edited in place, errors sorted, the token never stored."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import responses
from clock import running_period
from sink_runs import checkin, rows, send

API = "https://api.github.com/repos/acme/okrs"
TOKEN = "ghp_0123456789abcdefTOKEN"
JSON = {"content-type": "application/json; charset=utf-8", "x-ratelimit-limit": "5000"}


class FakeGitHub:
    """Issue 42's comments, served like GitHub's REST API (a page is a JSON list)."""

    def __init__(self, rsps: responses.RequestsMock, others: int = 0) -> None:
        self.comments: list[dict[str, Any]] = [
            self._comment(i, f"a human, {i}") for i in range(others)
        ]
        self.failures: list[tuple[int, dict[str, str], dict[str, Any]]] = []
        self.auth: list[str] = []
        comments = f"{API}/issues/42/comments"
        rsps.add_callback(
            responses.GET, re.compile(rf"{re.escape(comments)}\?.*"), callback=self.listing
        )
        rsps.add_callback(responses.POST, comments, callback=self.create)
        edit = re.compile(rf"{re.escape(API)}/issues/comments/\d+")
        rsps.add_callback(responses.PATCH, edit, callback=self.edit)
        missing = re.compile(rf"{re.escape(API)}/issues/404/comments.*")
        rsps.add_callback(responses.GET, missing, callback=self.missing)

    def _comment(self, i: int, body: str) -> dict[str, Any]:
        return {
            "id": 1_000_000 + i,
            "node_id": f"IC_kwDO{i}",
            "url": f"{API}/issues/comments/{1_000_000 + i}",
            "html_url": f"https://github.com/acme/okrs/issues/42#issuecomment-{1_000_000 + i}",
            "body": body,
            "user": {"login": "okrsync-bot", "id": 7, "type": "Bot"},
            "created_at": "2026-11-02T12:00:00Z",
            "updated_at": "2026-11-02T12:00:00Z",
            "issue_url": f"{API}/issues/42",
            "author_association": "NONE",
        }

    def _fail(self, request: Any) -> tuple[int, dict[str, str], str] | None:
        self.auth.append(request.headers.get("Authorization", ""))
        if self.failures:
            status, headers, body = self.failures.pop(0)
            return status, {**JSON, **headers}, json.dumps(body)
        return None

    def listing(self, request: Any) -> tuple[int, dict[str, str], str]:
        failed = self._fail(request)
        if failed:
            return failed
        query = dict(p.split("=") for p in request.url.partition("?")[2].split("&"))
        per, page = int(query["per_page"]), int(query["page"])
        return 200, JSON, json.dumps(self.comments[(page - 1) * per : page * per])

    def create(self, request: Any) -> tuple[int, dict[str, str], str]:
        failed = self._fail(request)
        if failed:
            return failed
        comment = self._comment(len(self.comments), json.loads(request.body)["body"])
        self.comments.append(comment)
        return 201, JSON, json.dumps(comment)

    def edit(self, request: Any) -> tuple[int, dict[str, str], str]:
        failed = self._fail(request)
        if failed:
            return failed
        wanted = int(request.url.rsplit("/", 1)[1])
        [comment] = [c for c in self.comments if c["id"] == wanted]
        comment["body"] = json.loads(request.body)["body"]
        return 200, JSON, json.dumps(comment)

    def missing(self, request: Any) -> tuple[int, dict[str, str], str]:
        body = {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
        return 404, JSON, json.dumps(body)

    def managed(self) -> list[str]:
        return [c["body"] for c in self.comments if "<!-- okrsync:" in c["body"]]


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKRSYNC_GH_TOKEN", TOKEN)


def setup(tmp_path: Path, issue: int = 42) -> None:
    (tmp_path / "okrs.yaml").write_text(
        running_period("2026-Q4") + "sinks:\n"
        "  gh: {type: github-issue, repo: acme/okrs, max_attempts: 5}\n"
        "objectives:\n"
        "  - id: o\n"
        "    title: O\n"
        "    key_results:\n"
        "      - {id: api-uptime, source: manual, start: 0, target: 100, unit: '%', "
        f"push: [{{sink: gh, issue: {issue}}}]}}\n"
    )


def test_one_comment_is_created_then_edited_in_place(tmp_path: Path) -> None:
    """The first delivery creates the managed comment (after the humans' 150 comments, two
    pages); later ones edit it: one okrsync comment holding the latest value."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = FakeGitHub(rsps, others=150)
        setup(tmp_path)
        checkin(tmp_path, 10)
        send(tmp_path)
        for value in (20, 30):
            checkin(tmp_path, value)
            send(tmp_path)
    [managed] = fake.managed()
    assert managed.startswith("<!-- okrsync:api-uptime -->\n**api-uptime: 30 %")
    assert len(fake.comments) == 151
    assert set(fake.auth) == {f"Bearer {TOKEN}"}
    assert [r["state"] for r in rows(tmp_path)] == ["delivered"] * 3


def test_undelivered_values_are_superseded_by_the_latest(tmp_path: Path) -> None:
    """Values enqueued before a run: only the latest is written to the comment."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = FakeGitHub(rsps)
        setup(tmp_path)
        for value in (1, 2, 3):
            checkin(tmp_path, value)
        assert send(tmp_path).sent == 1
    assert [r["state"] for r in rows(tmp_path)] == ["superseded", "superseded", "delivered"]
    [managed] = fake.managed()
    assert "api-uptime: 3 %" in managed


@pytest.mark.parametrize(
    ("status", "headers", "body", "state"),
    [
        (
            403,
            {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1"},
            {"message": "API rate limit exceeded for user ID 7."},
            "delivered",
        ),
        (
            429,
            {"retry-after": "0"},
            {"message": "You have exceeded a secondary rate limit."},
            "delivered",
        ),
        (502, {}, {"message": "Server Error"}, "delivered"),
        (
            401,
            {},
            {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
            "failed",
        ),
        (
            403,
            {"x-ratelimit-remaining": "4999"},
            {"message": "Resource not accessible by integration"},
            "failed",
        ),
    ],
    ids=["ratelimit-remaining-0", "429-retry-after", "502", "401", "403-forbidden"],
)
def test_answers_are_sorted_into_retried_and_failed(
    tmp_path: Path, status: int, headers: dict[str, str], body: dict[str, Any], state: str
) -> None:
    """Rate limits (x-ratelimit-remaining: 0, Retry-After) and 5xx are retried; 401 and
    a plain 403 fail for good with GitHub's message; the token is never in the store."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = FakeGitHub(rsps)
        fake.failures = [(status, headers, body)]
        setup(tmp_path)
        checkin(tmp_path, 5)
        send(tmp_path)
    [row] = rows(tmp_path)
    assert row["state"] == state
    if state == "failed":
        assert row["last_status_code"] == status and body["message"] in row["last_error"]
        assert fake.managed() == []
    else:
        assert len(fake.managed()) == 1 and row["attempts"] == 2
    assert TOKEN not in "\n".join(sqlite3.connect(tmp_path / "x.db").iterdump())


def test_an_unknown_issue_fails_for_good(tmp_path: Path) -> None:
    """404 (no such issue, or no access) is permanent, with GitHub's message."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeGitHub(rsps)
        setup(tmp_path, issue=404)
        checkin(tmp_path, 5)
        send(tmp_path)
    [row] = rows(tmp_path)
    assert (row["state"], row["last_status_code"]) == ("failed", 404)
    assert "Not Found" in row["last_error"]


def test_without_a_token_nothing_is_sent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The error names the env var to set; no request leaves (responses would fail one)."""
    monkeypatch.delenv("OKRSYNC_GH_TOKEN")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = FakeGitHub(rsps)
        setup(tmp_path)
        checkin(tmp_path, 5)
        send(tmp_path)
    assert fake.auth == []
    [row] = rows(tmp_path)
    assert row["state"] == "failed" and "OKRSYNC_GH_TOKEN" in row["last_error"]
