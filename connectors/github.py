"""GitHub connector: search counts, workflow success rate, releases, open issues, merge time.

Why it calls PyGithub the way it does (checked against PyGithub 2.10.0):

* One retry layer, ours (okrsync.retry). `Github(retry=None)` turns off GithubRetry
  (urllib3 retries, total=10, sleeping until rate limits reset), leaving requests' default
  of 0 retries; `seconds_between_requests=None` turns off its own sleeping throttle, so the
  injectable RateLimiter below is the only one. (PyGithub still re-asks once, after 2 s,
  on a 202 "still computing" answer; none of the endpoints used here send 202.)
* Requests go through `gh.requester.requestJsonAndCheck`: PyGithub builds URLs (GitHub
  Enterprise too), auth and errors, while we keep the raw JSON: `search_issues().totalCount`
  is capped at 1000 (PyGithub #1309), the raw `total_count` is not, and costs one request.
* Budgets per connector: search at most 30 requests/min (10 without a token), and no
  request while x-ratelimit-remaining is 0 until x-ratelimit-reset. A 403/429 that is a
  rate limit raises RateLimitedError with the wait from Retry-After or the reset time.
* Transport: PyGithub makes its requests session per connection object, so the requester
  gets (per instance, not PyGithub's global `injectConnectionClasses`) a connection class
  that mounts okrsync's BoundedAdapter: one deadline per request, `max_response_bytes`.
  PyGithub follows a 301 only on the same host and raises RuntimeError otherwise (read as
  a FetchError); it never follows other redirects for these endpoints.
* Repository endpoints are conditional: their ETag is cached and sent as If-None-Match; a
  304 reuses the cached answer. 304s count in `requests` and also in `not_modified`.
"""

from __future__ import annotations

import contextlib
import re
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import quote, urlparse

from pydantic import Field, field_validator, model_validator

from okrsync.connector import (
    AuthError,
    FetchError,
    NonBlank,
    QueryBase,
    Reading,
    SourceBase,
    Window,
)
from okrsync.secrets import env_name, read_secret

from ._http import (
    TRANSPORT_ERRORS,
    Url,
    classify,
    is_html,
    network_error,
    safe_url,
    snippet,
)
from ._ratelimit import RateLimiter

if TYPE_CHECKING:  # PyGithub is imported when a GitHub source is first measured, not to validate
    from github import Github, GithubException

SEARCH_CAP = 1000  # GitHub returns at most this many results for a search or filtered list
PAGE = 100
REPO_METRICS = ("workflow_success_rate", "releases", "open_issues")
SEARCH_METRICS = ("median_merge_hours",)
GithubMetric = Literal["median_merge_hours", "workflow_success_rate", "releases", "open_issues"]
REPO_PATTERN = r"^[\w.-]+/[\w.-]+$"
ETAG_CACHE = 512  # cached answers per connector: a few per repository KR
DEFAULT_API = "https://api.github.com"


def parse_time(raw: Any) -> datetime | None:
    """A GitHub timestamp (`2022-12-24T07:29:12Z`), or None when absent."""
    return datetime.fromisoformat(str(raw)) if raw else None


class GithubSource(SourceBase):
    """GitHub or GitHub Enterprise Server; token from OKRSYNC_<NAME>_TOKEN (optional)."""

    type: Literal["github"] = "github"
    url: Url | None = Field(None, description="API base for Enterprise: https://host/api/v3")


class GithubQuery(QueryBase):
    """A search (count, or median merge time) or a repository metric."""

    search: NonBlank | None = Field(None, description="github: issue/PR search query")
    repo: str | None = Field(None, description="github: owner/name")
    metric: (
        Literal["median_merge_hours", "workflow_success_rate", "releases", "open_issues"] | None
    ) = Field(None, description="jira/github: a derived metric")
    workflow: str | None = Field(None, description="github: workflow file, e.g. ci.yml")
    branch: str | None = Field(None, description="github: branch for workflow runs")

    @field_validator("repo")
    @classmethod
    def _owner_name(cls, value: str | None) -> str | None:
        if value is not None and not re.match(REPO_PATTERN, value):
            raise ValueError(f"'{value}' is not a repository: write owner/name, e.g. acme/api")
        return value

    @model_validator(mode="after")
    def _search_or_repo(self) -> GithubQuery:
        if self.search is None and self.repo is None:
            raise ValueError("github sources need `repo` or `search`")
        if self.search is not None and self.repo is not None:
            raise ValueError("use `search` or `repo`, not both (put repo:OWNER/NAME in the search)")
        if (self.workflow or self.branch) and self.metric != "workflow_success_rate":
            raise ValueError("`workflow` and `branch` go with `metric: workflow_success_rate` only")
        if self.search is not None:
            if self.metric not in (None, *SEARCH_METRICS):
                raise ValueError("with `search`, metric can only be median_merge_hours")
        elif self.metric not in REPO_METRICS:
            raise ValueError(f"with `repo`, metric must be one of {', '.join(REPO_METRICS)}")
        return self


class GithubConnector:
    """Measures GitHub (or GitHub Enterprise) through PyGithub's requester."""

    source_model: ClassVar[type[GithubSource]] = GithubSource
    query_model: ClassVar[type[GithubQuery]] = GithubQuery
    main_query_key: ClassVar[str] = "search"
    as_of_hint: ClassVar[str] = (
        "write a search for an as-of date, e.g. merged:<{now}; repository metrics only know today"
    )
    """How to write a query that answers for a past day (`okrsync backfill`)."""

    def __init__(
        self,
        name: str,
        config: GithubSource,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self.config = config
        self.requests = 0
        self.not_modified = 0
        self._clock, self._sleep = clock, sleep
        self._gh: Github | None = None
        self._limits: dict[str, RateLimiter] = {}
        self._etags: dict[str, tuple[str, Any]] = {}
        self._has_token = False

    # --- transport --------------------------------------------------------------------

    def _client(self) -> Github:
        if self._gh is None:
            try:
                token = read_secret(env_name(self.name, "TOKEN"))
            except OSError as exc:
                raise AuthError(f"{self.name}: {exc}") from None
            self._has_token = bool(token)
            base = (self.config.url or DEFAULT_API).rstrip("/")
            parsed = urlparse(base)
            if parsed.hostname != "api.github.com" and parsed.path in ("", "/"):
                base += "/api/v3"  # GitHub Enterprise Server serves the REST API here
            from ._github_client import client

            cfg = self.config
            self._gh = client(base, token, cfg.timeout, cfg.max_response_bytes, PAGE)
            kw: dict[str, Any] = {"clock": self._clock, "sleep": self._sleep}
            self._limits = {
                "search": RateLimiter(f"{self.name} search", _search_budget(token), **kw),
                "core": RateLimiter(self.name, None, **kw),
            }
        return self._gh

    def _get(self, path: str, params: dict[str, Any], resource: str, cache: bool = False) -> Any:
        """One GET of `path` under the API base, within budget; errors become okrsync errors."""
        gh = self._client()
        self._limits[resource].acquire()
        key = path + "?" + "&".join(f"{k}={v}" for k, v in sorted(params.items()))
        cached = self._etags.get(key) if cache else None
        headers = {"If-None-Match": cached[0]} if cached else {}
        self.requests += 1
        from ._github_client import GithubException

        try:
            answer_headers, data = gh.requester.requestJsonAndCheck(
                "GET", path, parameters=params, headers=headers
            )
        except GithubException as exc:
            self._observe(exc.headers or {}, resource)
            raise self._error(exc, path) from None
        except TRANSPORT_ERRORS as exc:
            raise network_error(exc, self.name, self._base(), self.config.timeout) from None
        except RuntimeError as exc:  # PyGithub refuses a 301 to another scheme or host
            raise FetchError(f"{self.name}: {safe_url(str(exc))}") from None
        except ValueError:
            raise FetchError(f"{self.name}: the answer from {path} is not JSON") from None
        self._observe(answer_headers, resource)
        if data is None and cached:  # 304 Not Modified: the cached answer still holds
            self.not_modified += 1
            return cached[1]
        wrapped = (  # how PyGithub wraps a body that is not JSON
            isinstance(data, dict)
            and isinstance(data.get("data"), str)
            and set(data) <= {"data", "url"}
        )
        if wrapped or is_html(answer_headers, ""):
            raise FetchError(
                f"{self.name}: got an HTML page or non-JSON text from {path} instead of JSON: "
                "is `url` the API base (https://HOST/api/v3), or is a proxy in the way?"
            )
        etag = answer_headers.get("etag")
        if cache and etag:
            self._etags.pop(key, None)
            self._etags[key] = (etag, data)
            if len(self._etags) > ETAG_CACHE:
                del self._etags[next(iter(self._etags))]  # drop the least recently stored
        return data

    def _base(self) -> str:
        return safe_url(self.config.url or DEFAULT_API)

    def _observe(self, headers: dict[str, Any], resource: str) -> None:
        search = headers.get("x-ratelimit-resource", resource) == "search"
        limiter = self._limits["search" if search else "core"]
        remaining, reset = headers.get("x-ratelimit-remaining"), headers.get("x-ratelimit-reset")
        with contextlib.suppress(ValueError):  # a proxy's odd header is no reason to fail
            limiter.observe(
                int(float(remaining)) if remaining is not None else None,
                float(reset) if reset is not None else None,
            )

    def _error(self, exc: GithubException, path: str) -> FetchError:
        headers = {k: str(v) for k, v in (exc.headers or {}).items()}
        data = exc.data if isinstance(exc.data, dict) else {}
        text = str(data.get("message") or data.get("data") or "").strip()
        errors = [
            str(e.get("message", e) if isinstance(e, dict) else e) for e in data.get("errors") or []
        ]
        token_env = env_name(self.name, "TOKEN")
        private = "" if self._has_token else f" (private? set {token_env})"
        error = classify(
            self.name,
            exc.status,
            headers,
            text,  # PyGithub keeps a non-JSON body (an HTML page) as data["data"]
            auth_hint=token_env,
            message=" ".join([text, "; ".join(errors)]).strip() or None,
            where=path,
            hints={404: f"not found: {path}{private}"},
            clock=self._clock,
        )
        return error or FetchError(f"{self.name}: HTTP {exc.status} for {path}: {snippet(text)}")

    def pace(self, query: GithubQuery) -> float:
        """Seconds between two requests of `query` that the search budget allows (0: the
        REST API, budgeted by the server's headers only); for `backfill --dry-run`."""
        if query.search is None:
            return 0.0
        try:
            token = read_secret(env_name(self.name, "TOKEN"))
        except OSError:
            token = None
        return 60.0 / _search_budget(token)

    # --- measuring --------------------------------------------------------------------

    def fetch(self, query: GithubQuery, window: Window) -> Reading:
        """Dispatch on the KR's fields: `search` (count or median) or `repo` + `metric`."""
        if query.search is not None:
            if query.metric == "median_merge_hours":
                return self._median_merge_hours(query.search)
            return self._search_count(query.search)
        repo = str(query.repo)
        if query.metric == "workflow_success_rate":
            return self._workflow_success_rate(repo, query, window)
        if query.metric == "releases":
            return self._releases(repo, window)
        data = self._get(f"/repos/{repo}", {}, "core", cache=True)
        count = self._int(data, "open_issues_count")
        return Reading(float(count), answer={"open_issues_count": count})

    def _int(self, data: Any, key: str) -> int:
        value = data.get(key) if isinstance(data, dict) else None
        if isinstance(value, bool) or not isinstance(value, int):
            raise FetchError(f"{self.name}: the answer has no whole number `{key}`")
        if value < 0:
            raise FetchError(f"{self.name}: `{key}` is {value}: a count cannot be below 0")
        return value

    def _search_count(self, q: str) -> Reading:
        data = self._get("/search/issues", {"q": q, "per_page": 1}, "search")
        note = (
            "GitHub search timed out; the count may be low"
            if (isinstance(data, dict) and data.get("incomplete_results"))
            else None
        )
        total = self._int(data, "total_count")
        answer: dict[str, Any] = {"total_count": total}
        if isinstance(data, dict) and data.get("incomplete_results"):
            answer["incomplete_results"] = True
        return Reading(float(total), note, answer)

    def _median_merge_hours(self, q: str) -> Reading:
        hours: list[float] = []
        total = 0
        params: dict[str, Any] = {"q": q, "sort": "created", "order": "desc", "per_page": PAGE}
        for page in range(1, SEARCH_CAP // PAGE + 1):
            data = self._get("/search/issues", {**params, "page": page}, "search")
            total = self._int(data, "total_count")
            items = data.get("items") or []
            for item in items:
                merged = self._merged_at(item)
                created = parse_time(item.get("created_at"))
                if merged and created:
                    hours.append((merged - created).total_seconds() / 3600)
            if len(items) < PAGE or page * PAGE >= total:
                break
        if not hours:
            raise FetchError(f"{self.name}: no merged pull requests match {q!r}")
        note = None
        if total > SEARCH_CAP:
            note = f"median over the newest {SEARCH_CAP} of {total} matching pull requests"
        answer = {"total_count": total, "merged_pull_requests": len(hours)}
        return Reading(statistics.median(hours), note, answer)

    @staticmethod
    def _merged_at(item: dict[str, Any]) -> datetime | None:
        pull = item.get("pull_request")
        if not isinstance(pull, dict):
            return None  # an issue, not a pull request
        if "merged_at" in pull:
            return parse_time(pull["merged_at"])  # None: closed without merging
        return parse_time(item.get("closed_at"))  # older answers: closed_at of a merged PR

    def _pages(self, path: str, params: dict[str, Any], key: str | None) -> tuple[list[Any], int]:
        """Up to SEARCH_CAP items of a paged repository list, and the total GitHub reports."""
        items: list[Any] = []
        total = 0
        for page in range(1, SEARCH_CAP // PAGE + 1):
            data = self._get(path, {**params, "per_page": PAGE, "page": page}, "core", cache=True)
            batch = data.get(key) if key and isinstance(data, dict) else data
            if not isinstance(batch, list):
                raise FetchError(f"{self.name}: unexpected answer from {path}")
            items.extend(batch)
            total = self._int(data, "total_count") if key else len(items)
            if len(batch) < PAGE or (key and len(items) >= total):
                break
        return items, max(total, len(items))

    def _workflow_success_rate(self, repo: str, query: GithubQuery, window: Window) -> Reading:
        workflow, branch = query.workflow, query.branch
        since, until = window.since, window.until
        path = f"/repos/{repo}/actions/runs"
        if workflow:
            path = f"/repos/{repo}/actions/workflows/{quote(str(workflow), safe='')}/runs"
        params: dict[str, Any] = {
            "status": "completed",
            "created": f"{since:%Y-%m-%dT%H:%M:%SZ}..{until:%Y-%m-%dT%H:%M:%SZ}",
        }
        if branch:
            params["branch"] = branch
        runs, total = self._pages(path, params, "workflow_runs")
        conclusions = [
            r.get("conclusion")
            for r in runs
            if r.get("status") == "completed"
            and since <= (parse_time(r.get("created_at")) or since) <= until
            and (not branch or r.get("head_branch") == branch)
        ]
        success, failure = conclusions.count("success"), conclusions.count("failure")
        if success + failure == 0:
            what = f"{workflow or 'any workflow'}" + (f" on {branch}" if branch else "")
            raise FetchError(
                f"{self.name}: no successful or failed runs of {what} in {repo} between "
                f"{since:%Y-%m-%d} and {until:%Y-%m-%d}"
            )
        note = f"over the newest {len(runs)} of {total} runs" if total > len(runs) else None
        answer = {"runs": len(runs), "total_count": total, "success": success, "failure": failure}
        return Reading(100.0 * success / (success + failure), note, answer)

    def _releases(self, repo: str, window: Window) -> Reading:
        releases, _ = self._pages(f"/repos/{repo}/releases", {}, None)
        count = 0
        for release in releases:
            published = parse_time(release.get("published_at"))
            if not release.get("draft") and published and window.since <= published <= window.until:
                count += 1
        note = f"over the newest {SEARCH_CAP} releases" if len(releases) >= SEARCH_CAP else None
        return Reading(float(count), note, {"releases_in_period": count, "listed": len(releases)})

    def close(self) -> None:
        """Release pooled connections."""
        if self._gh is not None:
            self._gh.close()


def _search_budget(token: str | None) -> int:
    """Search requests a minute GitHub allows: 30 with a token, 10 without."""
    return 30 if token else 10
