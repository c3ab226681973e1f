"""Config models of source instances (`sources:` in YAML), one per connector type.

Each model also declares which key-result fields make a query for that type, so config
validation can say "jira KRs need `jql`" without importing any connector.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal
from urllib.parse import urlparse

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _http_url(value: str) -> str:
    parts = urlparse(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"'{value}' is not an http(s) URL, e.g. http://127.0.0.1:9090")
    return value


Url = Annotated[str, AfterValidator(_http_url)]


class SourceBase(BaseModel):
    """Options every source has; secrets never live here (they come from the environment)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    type: str
    timeout: float = Field(10.0, gt=0, description="Seconds before one request is abandoned.")
    max_concurrency: int = Field(4, ge=1, description="Requests in flight at once to this source.")

    query_fields: ClassVar[frozenset[str]] = frozenset()
    required_one_of: ClassVar[frozenset[str]] = frozenset()


class PrometheusSource(SourceBase):
    """A Prometheus server; auth from OKRSYNC_<NAME>_USER/_PASSWORD or _TOKEN."""

    type: Literal["prometheus"]
    url: Url = Field(description="Base URL, e.g. http://127.0.0.1:9090")

    query_fields: ClassVar[frozenset[str]] = frozenset({"query", "reduce"})
    required_one_of: ClassVar[frozenset[str]] = frozenset({"query"})


class JiraSource(SourceBase):
    """Jira Cloud (OKRSYNC_<NAME>_USER + _TOKEN) or Data Center (OKRSYNC_<NAME>_TOKEN, a PAT)."""

    type: Literal["jira"]
    url: Url
    deployment: Literal["cloud", "datacenter"] | None = Field(
        None, description="Skip auto-detection from server info."
    )

    query_fields: ClassVar[frozenset[str]] = frozenset({"jql", "sum", "metric"})
    required_one_of: ClassVar[frozenset[str]] = frozenset({"jql"})


class GithubSource(SourceBase):
    """GitHub or GitHub Enterprise Server; token from OKRSYNC_<NAME>_TOKEN (optional)."""

    type: Literal["github"]
    url: Url | None = Field(None, description="API base for Enterprise: https://host/api/v3")

    query_fields: ClassVar[frozenset[str]] = frozenset(
        {"search", "repo", "metric", "workflow", "branch"}
    )
    required_one_of: ClassVar[frozenset[str]] = frozenset({"search", "repo"})


class HttpSource(SourceBase):
    """Any JSON API; secret headers from OKRSYNC_<NAME>_HEADER_<HEADER_NAME>."""

    type: Literal["http"]
    url: Url
    headers: dict[str, str] = Field(default_factory=dict, description="Non-secret headers.")

    query_fields: ClassVar[frozenset[str]] = frozenset({"extract", "path", "method", "body"})
    required_one_of: ClassVar[frozenset[str]] = frozenset({"extract"})


SourceConfig = Annotated[
    PrometheusSource | JiraSource | GithubSource | HttpSource, Field(discriminator="type")
]
SOURCE_MODELS: dict[str, type[SourceBase]] = {
    "prometheus": PrometheusSource,
    "jira": JiraSource,
    "github": GithubSource,
    "http": HttpSource,
}
ALL_QUERY_FIELDS: frozenset[str] = frozenset().union(
    *(m.query_fields for m in SOURCE_MODELS.values())
)
