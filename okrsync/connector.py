"""The one small interface every connector implements, and lookup of connectors by type."""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from okrsync.config.sources import SourceBase

BUILTIN = {
    "prometheus": "okrsync.connectors.prometheus:PrometheusConnector",
    "jira": "okrsync.connectors.jira:JiraConnector",
    "github": "okrsync.connectors.github:GithubConnector",
    "http": "okrsync.connectors.http_json:HttpJsonConnector",
}


@dataclass(frozen=True)
class Query:
    """What to ask a source: the KR's query fields (already templated) and a time window."""

    fields: Mapping[str, Any]
    since: datetime
    until: datetime

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)

    @property
    def key(self) -> str:
        """Identity for de-duplication: equal keys are fetched once per run."""
        return json.dumps(
            [self.fields, self.since.isoformat(), self.until.isoformat()],
            sort_keys=True,
            default=str,
        )

    def describe(self) -> str:
        """The exact query as people wrote it: the bare string when there is one field."""
        if len(self.fields) == 1:
            return str(next(iter(self.fields.values())))
        return json.dumps(dict(self.fields), sort_keys=True, default=str)


@dataclass(frozen=True)
class Reading:
    """A number a source gave, with an optional remark (e.g. 'median over newest 1000')."""

    value: float
    note: str | None = None


class Connector(Protocol):
    """Fetches one number for one query. Raises okrsync.errors.FetchError subclasses.

    Connectors do not retry: the runner wraps `fetch` in the one retry policy.
    `requests` counts HTTP requests made, for the per-source summary.
    """

    requests: int

    def fetch(self, query: Query) -> Reading: ...

    def close(self) -> None: ...


def connector_class(type_name: str) -> type[Any]:
    """Import the connector class for a source type only when it is first needed."""
    module_name, _, attr = BUILTIN[type_name].partition(":")
    return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]


def create(name: str, config: SourceBase) -> Connector:
    """A ready connector for the source `name`, configured by `config`."""
    cls = connector_class(config.type)
    return cls(name, config)  # type: ignore[no-any-return]
