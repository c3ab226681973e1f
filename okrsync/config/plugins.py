"""The installed connectors, found through the `okrsync.connectors` entry-point group.

The entry name is the `type:` written in YAML, the value `module:Class`. okrsync's own
connectors are registered the same way (in its pyproject.toml) and listed first; a
third-party package registering a name okrsync already has does not replace it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from okrsync.config.model import KeyResult
from okrsync.connector import Connector, QueryBase, SourceBase
from okrsync.errors import OkrsyncError

GROUP = "okrsync.connectors"
OWN = "okrsync"
# Display order of okrsync's own connectors (as the README introduces them); metadata
# keeps entry points sorted by name, and every other connector follows in that order.
LISTED_FIRST = ("prometheus", "jira", "github", "http")


class PluginError(OkrsyncError):
    """A connector is registered but cannot be used (import failure, not a connector)."""


@functools.cache
def installed() -> dict[str, EntryPoint]:
    """Connector type name -> entry point: okrsync's own first, then the rest by name."""

    def order(ep: EntryPoint) -> tuple[bool, int, str]:
        own = ep.dist is not None and ep.dist.name == OWN
        rank = LISTED_FIRST.index(ep.name) if ep.name in LISTED_FIRST else len(LISTED_FIRST)
        return (not own, rank, ep.name)

    out: dict[str, EntryPoint] = {}
    for ep in sorted(entry_points(group=GROUP), key=order):
        out.setdefault(ep.name, ep)
    return out


def type_names() -> list[str]:
    """The `type:` values a source may have."""
    return list(installed())


@dataclass(frozen=True)
class Plugin:
    """A loaded connector: its class and the two models it declares."""

    name: str
    cls: Callable[[str, Any], Connector]
    source_model: type[SourceBase]
    query_model: type[QueryBase]

    @property
    def query_keys(self) -> frozenset[str]:
        """The keys a KR writes for this connector (a field's alias where it has one)."""
        return keys_of(self.query_model)

    @property
    def main_query_key(self) -> str | None:
        """The query key a bare query string fills (an SLO's `good: <PromQL>`), when the
        connector declares one (`main_query_key`); else its queries are mappings."""
        declared = getattr(self.cls, "main_query_key", None)
        return declared if isinstance(declared, str) else None


def keys_of(model: type[QueryBase]) -> frozenset[str]:
    """The YAML keys of a query model's fields: their aliases where they have one."""
    return frozenset(f.alias or name for name, f in model.model_fields.items())


@functools.cache
def plugin(type_name: str) -> Plugin:
    """The connector registered as `type_name`, imported on first use."""
    ep = installed().get(type_name)
    if ep is None:
        raise PluginError(f"unknown source type '{type_name}' (known: {', '.join(installed())})")
    try:
        cls = ep.load()
    except Exception as exc:  # a broken plugin is a config problem, not a crash
        raise PluginError(
            f"connector '{type_name}' ({ep.value}) cannot be loaded: {type(exc).__name__}: {exc}"
        ) from None
    source_model = getattr(cls, "source_model", None)
    query_model = getattr(cls, "query_model", None)
    if not (
        isinstance(cls, type)
        and isinstance(source_model, type)
        and issubclass(source_model, SourceBase)
        and isinstance(query_model, type)
        and issubclass(query_model, QueryBase)
        and callable(getattr(cls, "fetch", None))
    ):
        raise PluginError(
            f"connector '{type_name}' ({ep.value}) is not a connector: it needs `source_model` "
            "(a SourceBase subclass), `query_model` (a QueryBase subclass) and `fetch()`"
        )
    clash = sorted(keys_of(query_model) & set(KeyResult.model_fields))
    if clash:
        raise PluginError(
            f"connector '{type_name}' ({ep.value}) cannot be used: its query keys "
            f"{', '.join(clash)} are key result fields okrsync reads itself; the connector "
            "must rename them"
        )
    return Plugin(type_name, cls, source_model, query_model)


@functools.cache
def all_query_keys() -> frozenset[str]:
    """Query keys any loadable connector takes (computed once: the installed set is fixed)."""
    return frozenset().union(*query_keys().values())


def query_keys() -> dict[str, frozenset[str]]:
    """Each loadable connector's query keys, by type (for 'not a field of' messages)."""
    out: dict[str, frozenset[str]] = {}
    for name in installed():
        try:
            out[name] = plugin(name).query_keys
        except PluginError:
            continue
    return out


def create(name: str, source: SourceBase) -> Connector:
    """A ready connector instance for the source `name`, configured by `source`."""
    return plugin(source.type).cls(name, source)
