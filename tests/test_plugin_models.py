"""What okrsync demands of a connector class when it loads one through its entry point."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import EntryPoint
from typing import Any, ClassVar

import pytest
from pydantic import Field

from okrsync.config import plugins
from okrsync.connector import QueryBase, Reading, SourceBase, Window


class ClashQuery(QueryBase):
    unit: str  # a key result's own field: the KR could never give it to the connector


class AliasQuery(QueryBase):
    from_: str = Field(alias="from")


class _Base:
    source_model: ClassVar[type[SourceBase]] = SourceBase
    query_model: ClassVar[type[QueryBase]] = QueryBase

    def __init__(self, name: str, source: Any) -> None:
        self.requests = 0

    def fetch(self, query: Any, window: Window) -> Reading:
        return Reading(1.0)

    def close(self) -> None:
        pass


class ClashConnector(_Base):
    query_model = ClashQuery


class AliasConnector(_Base):
    query_model = AliasQuery


class NotAConnector:
    pass


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    group = plugins.GROUP
    eps = {
        n: EntryPoint(n, f"{__name__}:{c}", group)
        for n, c in [
            ("clash", "ClashConnector"),
            ("alias", "AliasConnector"),
            ("junk", "NotAConnector"),
            ("gone", "Missing"),
        ]
    }
    plugins.plugin.cache_clear()
    monkeypatch.setattr(plugins, "installed", lambda: eps)
    yield
    plugins.plugin.cache_clear()


def test_query_keys_that_a_key_result_owns_are_refused(registered: None) -> None:
    """A connector whose query model takes `unit` (a KR field) is refused, saying which."""
    with pytest.raises(plugins.PluginError, match=r"query keys unit are key result fields"):
        plugins.plugin("clash")


def test_aliases_are_the_keys_a_kr_writes(registered: None) -> None:
    """A field with an alias is written under its alias in YAML."""
    assert plugins.plugin("alias").query_keys == frozenset({"from"})


@pytest.mark.parametrize(
    ("name", "why"), [("junk", "is not a connector"), ("gone", "cannot be loaded")]
)
def test_broken_plugins_are_errors_not_crashes(registered: None, name: str, why: str) -> None:
    """A class without the models, or one that does not import, is a PluginError."""
    with pytest.raises(plugins.PluginError, match=why):
        plugins.plugin(name)
