"""Jira connector (Cloud and Data Center): counts issues, sums a numeric field, avg cycle time.

Why it calls the library the way it does (checked against jira 3.10.5):

* One retry layer, ours (okrsync.retry). `JIRA(max_retries=0)` makes ResilientSession send
  each request once: it never reaches its 429/503 back-off (which sleeps) nor retries
  connection errors. `JIRA.server_info()` re-asks up to 3 times on an empty body, outside
  `max_retries`, so server info is read with one `_get_json("serverInfo")` instead.
* Counting costs one request. Cloud removed /search in 2025: it counts with POST
  /rest/api/3/search/approximate-count, as Atlassian documents it (what
  `approximate_issue_count` sends, but on v3; called through `_get_json` because that
  method turns a missing `count` into 0) and pages /rest/api/3/search/jql. Data Center counts with
  GET search?maxResults=0 and reads `total`. `search_issues`/`enhanced_search_issues`
  are avoided: they first GET /field to translate names, which doubles the cost.
* `sum` and `avg_cycle_time_days` page through issues asking only for the fields needed:
  `search/jql` with `nextPageToken` on Cloud, `search` with `startAt` on Data Center. Any
  failed page fails the whole measurement; a partial sum is never returned.
* Cloud vs Data Center: `deployment:` in config, else an *.atlassian.net host, else the
  `deploymentType` of serverInfo (read once per connector).
* Auth: OKRSYNC_<NAME>_USER + _TOKEN is basic auth (Cloud: email + API token); _TOKEN
  alone is a bearer PAT (Data Center). A Cloud source without both fails before any request.
* Transport: okrsync's BoundedAdapter (connectors/_transport.py) is mounted on the
  client's requests session (`client._session`), so `timeout` is a deadline for the whole
  request and `max_response_bytes` caps every answer, whatever the library asks for.
* JIRAError's str() includes request headers (the Authorization header), so it is never
  shown: messages are built from the status, Jira's errorMessages, and redacted text.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlparse

import requests
from pydantic import Field, model_validator

from okrsync.connector import (
    AuthError,
    FetchError,
    NonBlank,
    QueryBase,
    Reading,
    SourceBase,
    Window,
)
from okrsync.secrets import env_name, read_secret, remember_basic

from ._http import (
    MESSAGE,
    TRANSPORT_ERRORS,
    USER_AGENT,
    Url,
    classify,
    is_html,
    network_error,
    snippet,
)
from ._transport import mount

if TYPE_CHECKING:  # the jira library is imported when a Jira source is first measured
    from jira import JIRA, JIRAError

PAGE_SIZE = 1000  # servers cap this themselves (Data Center at 1000, Cloud lower)
MAX_PAGES = 1000
CLOUD_HOSTS = (".atlassian.net", ".jira.com")


def parse_time(raw: Any, where: str) -> datetime:
    """A Jira timestamp such as `2023-06-24T19:24:50.000+0000`."""
    try:
        return datetime.fromisoformat(str(raw))
    except ValueError:
        raise FetchError(f"{where}: cannot read the date {raw!r}") from None


class JiraSource(SourceBase):
    """Jira Cloud (OKRSYNC_<NAME>_USER + _TOKEN) or Data Center (OKRSYNC_<NAME>_TOKEN, a PAT)."""

    type: Literal["jira"] = "jira"
    url: Url
    deployment: Literal["cloud", "datacenter"] | None = Field(
        None, description="Skip auto-detection from server info."
    )


class JiraQuery(QueryBase):
    """A JQL query: counts the issues it matches, or sums a field, or a derived metric."""

    jql: NonBlank = Field(description="jira: JQL; counts issues unless sum/metric")
    sum: NonBlank | None = Field(None, description="jira: sum this numeric field id")
    metric: Literal["avg_cycle_time_days"] | None = Field(
        None, description="jira/github: a derived metric"
    )

    @model_validator(mode="after")
    def _one_aggregate(self) -> JiraQuery:
        if self.sum is not None and self.metric is not None:
            raise ValueError("use either `sum` or `metric`, not both")
        return self


class JiraConnector:
    """Measures JQL queries on one Jira site through the `jira` library."""

    source_model: ClassVar[type[JiraSource]] = JiraSource
    query_model: ClassVar[type[JiraQuery]] = JiraQuery
    main_query_key: ClassVar[str] = "jql"
    as_of_hint: ClassVar[str] = 'write the JQL for an as-of date, e.g. resolved <= "{now}"'
    """How to write a query that answers for a past day (`okrsync backfill`)."""

    def __init__(self, name: str, config: JiraSource) -> None:
        self.name = name
        self.config = config
        self.requests = 0
        self._jira: JIRA | None = None
        host = urlparse(config.url).hostname or ""
        self._cloud: bool | None = None
        if config.deployment is not None:
            self._cloud = config.deployment == "cloud"
        elif host.endswith(CLOUD_HOSTS):
            self._cloud = True
        self._last: requests.Response | None = None
        self._has_user = False
        self._setup = threading.RLock()  # fetches run in parallel: set up the client once

    # --- connection -----------------------------------------------------------------

    def _env(self, suffix: str) -> str:
        return env_name(self.name, suffix)

    def _auth_hint(self) -> str:
        user, token = self._env("USER"), self._env("TOKEN")
        if self._cloud:
            return f"{user} (your Atlassian email) and {token} (an API token)"
        if self._cloud is False:
            return f"{token} (a personal access token)"
        return f"{user} + {token} (Cloud) or {token} alone (Data Center PAT)"

    def _count_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.requests += 1
        self._last = response

    def _client(self) -> JIRA:
        with self._setup:
            return self._make_client()

    def _make_client(self) -> JIRA:
        if self._jira is None:
            try:
                user = read_secret(self._env("USER"))
                token = read_secret(self._env("TOKEN"))
            except OSError as exc:
                raise AuthError(f"{self.name}: {exc}") from None
            auth: dict[str, Any] = {}
            if user and token:
                remember_basic(user, token)
                auth["basic_auth"] = (user, token)
            elif token:
                auth["token_auth"] = token
            self._has_user = bool(user and token)
            from jira import JIRA

            client = JIRA(
                server=self.config.url,
                options={"headers": {"User-Agent": USER_AGENT, "Accept": "application/json"}},
                get_server_info=False,  # read below, once, without the library's re-asking
                max_retries=0,  # okrsync.measure.retry is the one retry layer
                timeout=self.config.timeout,
                **auth,
            )
            client._session.hooks["response"].append(self._count_response)
            cfg = self.config
            mount(client._session, cfg.timeout, cfg.max_response_bytes, cfg.url)
            self._jira = client
        return self._jira

    def _get(
        self, path: str, params: dict[str, Any], post: bool = False, api: str = "2"
    ) -> dict[str, Any]:
        """One request to /rest/api/<api>/<path>, every failure turned into an okrsync error."""
        client = self._client()
        self._last = None
        base = "{server}/rest/api/" + api + "/{path}"
        from jira import JIRAError

        try:
            data = client._get_json(path, params=params, base=base, use_post=post)
        except JIRAError as exc:
            raise self._error(exc, path) from None
        except TRANSPORT_ERRORS as exc:
            self.requests += 1
            raise network_error(exc, self.name, self.config.url, self.config.timeout) from None
        except ValueError:
            if self._last is not None and is_html(self._last.headers, self._last.text):
                raise FetchError(
                    f"{self.name}: got an HTML page instead of JSON from {path}: is `url` the "
                    "Jira base URL, or is a proxy or login page in the way?"
                ) from None
            raise FetchError(f"{self.name}: the answer from {path} is not JSON") from None
        if not isinstance(data, dict):
            raise FetchError(f"{self.name}: unexpected answer from {path}: {type(data).__name__}")
        return data

    def _error(self, exc: JIRAError, path: str) -> FetchError:
        response: requests.Response | None = exc.response
        if response is None:
            return FetchError(f"{self.name}: request to {path} failed: {snippet(str(exc.text))}")
        message = str(exc.text or "").strip() or None  # Jira's errorMessages, as jira read them
        shown = snippet(message or "", MESSAGE)
        error = classify(
            self.name,
            response.status_code,
            response.headers,
            response.text,
            auth_hint=self._auth_hint(),
            reason=response.reason or "",
            message=message,
            where=path,
            hints={
                400: f"Jira rejected the query: {shown}",
                404: f"HTTP 404 for {path} ({shown or 'not found'}): is `url` the Jira base URL "
                "(without /rest/...)?",
            },
        )
        return error or FetchError(f"{self.name}: HTTP {response.status_code} for {path}: {shown}")

    def _is_cloud(self) -> bool:
        with self._setup:
            if self._cloud is None:
                info = self._get("serverInfo", {})
                self._cloud = info.get("deploymentType") == "Cloud"
            return self._cloud

    def _require_auth(self) -> None:
        self._client()
        if self._is_cloud() and not self._has_user:
            raise AuthError(
                f"{self.name}: Jira Cloud needs credentials: set {self._env('USER')} (your "
                f"Atlassian email) and {self._env('TOKEN')} (an API token), or their _FILE forms"
            )

    # --- measuring ------------------------------------------------------------------

    def fetch(self, query: JiraQuery, window: Window) -> Reading:
        """Count, sum or average over the issues the KR's JQL matches."""
        jql, field, metric = query.jql, query.sum, query.metric
        self._require_auth()
        if field is not None:
            return self._sum(jql, field)
        if metric == "avg_cycle_time_days":
            return self._avg_cycle_time(jql)
        return self._count(jql)

    def _count(self, jql: str) -> Reading:
        if self._is_cloud():
            data = self._get("search/approximate-count", {"jql": jql}, post=True, api="3")
            key, note = "count", "Jira Cloud approximate count"
        else:
            data = self._get("search", {"jql": jql, "maxResults": 0, "fields": "id"})
            key, note = "total", None
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise FetchError(f"{self.name}: answer has no numeric `{key}`: {snippet(str(data))}")
        if value < 0:
            raise FetchError(f"{self.name}: `{key}` is {value}: a count cannot be below 0")
        return Reading(float(value), note, {key: value})

    def _issues(self, jql: str, fields: list[str]) -> list[dict[str, Any]]:
        """Every matching issue's `fields`, all pages, or an error: never a partial list."""
        issues: list[dict[str, Any]] = []
        params: dict[str, Any] = {"jql": jql, "fields": ",".join(fields), "maxResults": PAGE_SIZE}
        cloud = self._is_cloud()
        seen_tokens: set[str] = set()
        for _ in range(MAX_PAGES):
            page = (
                self._get("search/jql", params, api="3") if cloud else self._get("search", params)
            )
            batch = page.get("issues")
            if not isinstance(batch, list):
                raise FetchError(f"{self.name}: search answer has no `issues` list")
            issues.extend(i.get("fields") or {} for i in batch if isinstance(i, dict))
            if cloud:
                token = page.get("nextPageToken")
                if page.get("isLast", True) or not token:
                    return issues
                if token in seen_tokens:
                    raise FetchError(f"{self.name}: Jira repeated a page token; giving up")
                seen_tokens.add(token)
                params["nextPageToken"] = token
            else:
                total = page.get("total")
                start = int(page.get("startAt", params.get("startAt", 0))) + len(batch)
                if not batch or not isinstance(total, int) or start >= total:
                    return issues
                params["startAt"] = start
        raise FetchError(f"{self.name}: more than {MAX_PAGES} pages of issues; narrow the JQL")

    def _sum(self, jql: str, field: str) -> Reading:
        issues = self._issues(jql, [field])
        total = 0.0
        for fields in issues:
            value = fields.get(field)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise FetchError(
                    f"{self.name}: field {field} is not a number (got {snippet(str(value), 60)!r})"
                )
            total += value
        if issues and not any(field in f for f in issues):
            raise FetchError(
                f"{self.name}: no matching issue has a field {field!r}: use the field id "
                "(e.g. customfield_10016), not its name"
            )
        return Reading(total, answer={"issues": len(issues), "sum": total, "field": field})

    def _avg_cycle_time(self, jql: str) -> Reading:
        issues = self._issues(jql, ["created", "resolutiondate"])
        days: list[float] = []
        for fields in issues:
            if fields.get("resolutiondate") and fields.get("created"):
                created = parse_time(fields["created"], self.name)
                resolved = parse_time(fields["resolutiondate"], self.name)
                days.append((resolved - created).total_seconds() / 86400)
        if not days:
            raise FetchError(
                f"{self.name}: no resolved issues match, so there is no cycle time to average"
            )
        return Reading(
            sum(days) / len(days),
            f"mean over {len(days)} resolved issues",
            {"issues": len(issues), "resolved": len(days)},
        )

    def close(self) -> None:
        """Release pooled connections."""
        if self._jira is not None:
            self._jira.close()  # type: ignore[no-untyped-call]  # jira leaves close() untyped
