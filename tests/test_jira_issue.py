"""The jira-issue mirror against a `responses` fake shaped like Jira's REST API v2 (edit
issue: 204; add comment: 201; its `errorMessages`/`errors` error bodies): the number
field set and/or a comment added, Cloud basic and Data Center bearer auth, errors sorted."""

from __future__ import annotations

import base64
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import responses
from clock import running_period
from sink_runs import checkin, rows, send

JIRA = "https://jira.example.com"
TOKEN = "ATATT3xFfGF0-jira-token"
JSON = {"content-type": "application/json;charset=UTF-8"}
ISSUE = re.compile(rf"{re.escape(JIRA)}/rest/api/2/issue/([A-Z]+-\d+)(/comment)?$")


class FakeJira:
    """Issue OKR-12 with a number field; other keys answer Jira's 404."""

    def __init__(self, rsps: responses.RequestsMock) -> None:
        self.fields: dict[str, Any] = {}
        self.comments: list[str] = []
        self.auth: list[str] = []
        self.failures: list[tuple[int, dict[str, str], str]] = []
        rsps.add_callback(responses.PUT, ISSUE, callback=self.edit)
        rsps.add_callback(responses.POST, ISSUE, callback=self.comment)

    def _check(self, request: Any) -> tuple[int, dict[str, str], str] | None:
        self.auth.append(request.headers.get("Authorization", ""))
        if self.failures:
            return self.failures.pop(0)
        match = ISSUE.match(request.url)
        if match is None or match[1] != "OKR-12":
            missing = ["Issue does not exist or you do not have permission to see it."]
            return 404, JSON, json.dumps({"errorMessages": missing, "errors": {}})
        return None

    def edit(self, request: Any) -> tuple[int, dict[str, str], str]:
        failed = self._check(request)
        if failed:
            return failed
        fields = json.loads(request.body)["fields"]
        for name, value in fields.items():
            if name != "customfield_10050":
                why = (
                    f"Field '{name}' cannot be set. It is not on the appropriate screen, "
                    "or unknown."
                )
                return 400, JSON, json.dumps({"errorMessages": [], "errors": {name: why}})
            if not isinstance(value, int | float):
                return (
                    400,
                    JSON,
                    json.dumps(
                        {"errorMessages": [], "errors": {name: "Operation value must be a number"}}
                    ),
                )
        self.fields.update(fields)
        return 204, {}, ""

    def comment(self, request: Any) -> tuple[int, dict[str, str], str]:
        failed = self._check(request)
        if failed:
            return failed
        body = json.loads(request.body)["body"]
        self.comments.append(body)
        answer = {
            "id": str(10000 + len(self.comments)),
            "body": body,
            "self": f"{JIRA}/rest/api/2/issue/10010/comment/10000",
        }
        return 201, JSON, json.dumps(answer)


def setup(tmp_path: Path, target: str = "issue: OKR-12, field: customfield_10050") -> None:
    (tmp_path / "okrs.yaml").write_text(
        running_period("2026-Q4") + "sinks:\n"
        f"  jira: {{type: jira-issue, url: '{JIRA}', max_attempts: 5}}\n"
        "objectives:\n"
        "  - id: o\n"
        "    title: O\n"
        "    key_results:\n"
        "      - {id: api-uptime, source: manual, start: 0, target: 100, "
        f"push: [{{sink: jira, {target}}}]}}\n"
    )


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKRSYNC_JIRA_TOKEN", TOKEN)


def test_the_field_is_set_to_the_value_with_a_bearer_token(tmp_path: Path) -> None:
    """Data Center: TOKEN alone is a bearer PAT; the number field holds the KR's value."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        jira = FakeJira(rsps)
        setup(tmp_path)
        checkin(tmp_path, 42.5)
        send(tmp_path)
    assert jira.fields == {"customfield_10050": 42.5} and jira.comments == []
    assert jira.auth == [f"Bearer {TOKEN}"]
    [row] = rows(tmp_path)
    assert (row["state"], row["last_status_code"]) == ("delivered", 204)


def test_cloud_basic_auth_and_a_comment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cloud: USER + TOKEN is basic auth; `comment: true` adds a comment with the value
    and the measurement id; neither credential is stored."""
    monkeypatch.setenv("OKRSYNC_JIRA_USER", "bot@acme.example")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        jira = FakeJira(rsps)
        setup(tmp_path, "issue: OKR-12, field: customfield_10050, comment: true")
        checkin(tmp_path, 7)
        send(tmp_path)
    basic = base64.b64encode(f"bot@acme.example:{TOKEN}".encode()).decode()
    assert jira.auth == [f"Basic {basic}"] * 2
    [comment] = jira.comments
    assert (
        comment.startswith("api-uptime: 7 (target 100, progress 7%") and "measurement 1" in comment
    )
    assert jira.fields == {"customfield_10050": 7}
    dump = "\n".join(sqlite3.connect(tmp_path / "x.db").iterdump())
    assert TOKEN not in dump and basic not in dump


def test_only_the_latest_undelivered_value_is_mirrored(tmp_path: Path) -> None:
    """Three values before a run: one comment, the last value."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        jira = FakeJira(rsps)
        setup(tmp_path, "issue: OKR-12, comment: true")
        for value in (1, 2, 3):
            checkin(tmp_path, value)
        send(tmp_path)
    assert len(jira.comments) == 1 and jira.comments[0].startswith("api-uptime: 3 ")


@pytest.mark.parametrize(
    ("target", "failure", "state", "code", "message"),
    [
        ("issue: OKR-99, field: customfield_10050", None, "failed", 404, "Issue does not exist"),
        ("issue: OKR-12, field: customfield_99999", None, "failed", 400, "cannot be set"),
        (
            "issue: OKR-12, field: customfield_10050",
            (401, {}, "Client must be authenticated to access this resource."),
            "failed",
            401,
            "Client must be authenticated",
        ),
        (
            "issue: OKR-12, field: customfield_10050",
            (429, {"Retry-After": "0"}, ""),
            "delivered",
            204,
            None,
        ),
        (
            "issue: OKR-12, field: customfield_10050",
            (503, {}, "<html>Service Unavailable</html>"),
            "delivered",
            204,
            None,
        ),
    ],
    ids=["404-unknown-issue", "400-unknown-field", "401", "429-retry-after", "503"],
)
def test_answers_are_sorted_into_retried_and_failed(
    tmp_path: Path,
    target: str,
    failure: tuple[int, dict[str, str], str] | None,
    state: str,
    code: int,
    message: str | None,
) -> None:
    """Jira's 4xx fail for good with its message; 429 (Retry-After) and 5xx are retried."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        jira = FakeJira(rsps)
        jira.failures = [failure] if failure else []
        setup(tmp_path, target)
        checkin(tmp_path, 5)
        send(tmp_path)
    [row] = rows(tmp_path)
    assert (row["state"], row["last_status_code"]) == (state, code)
    if message:
        assert message in row["last_error"] and jira.fields == {}
    else:
        assert jira.fields == {"customfield_10050": 5}
