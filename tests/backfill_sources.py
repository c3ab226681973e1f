"""Loopback Jira (Data Center) and GitHub fakes that answer by the as-of date written
into the JQL or search string: shared by the backfill tests of the CLI and the daemon."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from datetime import date
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

FIXTURES = Path(__file__).parent / "fixtures"
DATE = re.compile(r"(\d{4}-\d{2}-\d{2})")


def resolved_by(day: date) -> int:
    """The fake Jira's count of issues resolved before `day` began: 3 a day since Oct 1."""
    return max(0, (day - date(2026, 10, 1)).days) * 3


def merged_by(day: date) -> int:
    """The fake GitHub's count of PRs merged before `day`: 10 plus 2 a day."""
    return 10 + max(0, (day - date(2026, 10, 1)).days) * 2


class Sources:
    """Jira DC (`GET /rest/api/2/search?maxResults=0`, answering `total`) and GitHub
    Enterprise (`GET /api/v3/search/issues`, answering `total_count`), each counting by
    the date in its query; `fail` dates answer HTTP 500; every query asked is kept."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.asked: list[tuple[str, str]] = []
        self.fail: set[str] = set()
        self.delay = 0.0
        """Seconds each GitHub search waits before answering (cut short by `release`)."""
        self.released = threading.Event()
        self.held: tuple[str, threading.Event] | None = None
        """(day, event): a query naming a day before `day` waits (up to 10 s) for `event`."""
        jira = json.loads((FIXTURES / "jira" / "dc_search_count.json").read_text())
        gh = json.loads((FIXTURES / "github" / "search_issues_count.json").read_text())

        def jira_search(request: Request) -> Response:
            jql = request.args["jql"]
            self.asked.append(("jira", jql))
            self._hold(jql)
            day = DATE.search(jql)
            if day and day[1] in self.fail:
                body = {"errorMessages": ["Internal server error"], "errors": {}}
                return Response(json.dumps(body), 500, content_type="application/json")
            total = resolved_by(date.fromisoformat(day[1])) if day else 999
            total += 1000 if "project = NEW" in jql else 0  # a reworded query counts more
            return Response(json.dumps({**jira, "total": total}), content_type="application/json")

        def gh_search(request: Request) -> Response:
            q = request.args["q"]
            self.asked.append(("github", q))
            self._hold(q)
            if self.delay:
                self.released.wait(self.delay)
            day = DATE.search(q)
            total = merged_by(date.fromisoformat(day[1])) if day else 999
            body = {**gh, "total_count": total, "items": gh["items"][:1]}
            headers = {"x-ratelimit-remaining": "29", "x-ratelimit-resource": "search"}
            return Response(json.dumps(body), content_type="application/json", headers=headers)

        server.expect_request("/rest/api/2/search").respond_with_handler(jira_search)
        server.expect_request("/api/v3/search/issues").respond_with_handler(gh_search)

    def release(self) -> None:
        """Answer every waiting request now (a test's end: the server is shared)."""
        self.delay = 0.0
        self.released.set()
        if self.held is not None:
            self.held[1].set()

    @staticmethod
    def days(query: str) -> list[str]:
        """The days (YYYY-MM-DD) a query names."""
        return DATE.findall(query)

    def _hold(self, query: str) -> None:
        if self.held is not None and any(d < self.held[0] for d in self.days(query)):
            self.held[1].wait(10)


def stored(db: Path, kr: str, order: str = "m.measured_at, m.id") -> list[dict[str, Any]]:
    """A KR's stored measurements, each with its run's `kind`."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    found = conn.execute(
        "SELECT m.*, r.kind FROM measurements m JOIN runs r ON r.id = m.run_id "
        f"WHERE kr_id = ? ORDER BY {order}",
        [kr],
    ).fetchall()
    conn.close()
    return [dict(r) for r in found]
