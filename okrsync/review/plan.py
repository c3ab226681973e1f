"""`okrsync plan`: what applying a config would change, compared with what the store holds.

Pure: the caller measures (without storing) and reads the store; this module judges both
sides the way `status` does and compares them, KR by KR and objective by objective:
values, progress and status, and each definition field by field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from okrsync.config.loader import Config
from okrsync.measure.measurement import Measurement
from okrsync.progress.definitions import Definitions
from okrsync.progress.maths import Observation, observe_held
from okrsync.progress.tree import KRView, Tree, evaluate
from okrsync.secrets import redact

Action = Literal["add", "change", "retire", "unchanged"]
ACTIONS: tuple[Action, ...] = ("change", "add", "retire", "unchanged")

FIELD_ORDER = (
    "title",
    "objective",
    "source",
    "sources",
    "query",
    "jql",
    "search",
    "repo",
    "metric",
    "workflow",
    "branch",
    "sum",
    "reduce",
    "extract",
    "path",
    "method",
    "body",
    "formula",
    "inputs",
    "start",
    "target",
    "unit",
    "weight",
    "kind",
    "owner",
    "parent",
    "every",
    "cron",
    "push",
    "push_unchanged",
)
"""How definition fields are listed (others follow in name order)."""
TOLERANCE = 1e-9
"""Relative difference below which two measured values (or progresses) count as equal."""


@dataclass(frozen=True)
class Pair:
    """One quantity before (the store, as `status` shows it) and after (measured now)."""

    old: Any
    new: Any

    @property
    def differs(self) -> bool:
        if isinstance(self.old, float | int) and isinstance(self.new, float | int):
            scale = max(abs(self.old), abs(self.new), 1.0)
            return abs(self.old - self.new) > TOLERANCE * scale
        return bool(self.old != self.new)

    def as_json(self) -> dict[str, Any]:
        return {"old": self.old, "new": self.new}


@dataclass(frozen=True)
class KRPlan:
    id: str
    objective: str | None
    action: Action
    value: Pair
    progress: Pair
    status: Pair
    config: dict[str, Pair] = field(default_factory=dict)
    measured: bool = False
    """Measured now (False: manual, not in `--only`, retired, or the period is not running)."""
    unit: str | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "objective": self.objective,
            "action": self.action,
            "value": self.value.as_json(),
            "progress": self.progress.as_json(),
            "status": self.status.as_json(),
            "config": {k: v.as_json() for k, v in self.config.items()},
            "measured": self.measured,
            "unit": self.unit,
            "error": self.error,
        }


@dataclass(frozen=True)
class ObjectivePlan:
    id: str
    action: Action
    config: dict[str, Pair] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "config": {k: v.as_json() for k, v in self.config.items()},
        }


@dataclass(frozen=True)
class Plan:
    krs: list[KRPlan]
    objectives: list[ObjectivePlan]

    @property
    def actions(self) -> list[Action]:
        return [k.action for k in self.krs] + [o.action for o in self.objectives]

    def count(self, action: Action) -> int:
        """KRs and objectives with this action."""
        return self.actions.count(action)

    @property
    def changes(self) -> int:
        """KRs and objectives that would be added, changed or retired."""
        return sum(1 for a in self.actions if a != "unchanged")

    @property
    def errors(self) -> list[KRPlan]:
        return [k for k in self.krs if k.error is not None]


def diff_fields(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> dict[str, Pair]:
    """Every field whose value differs between two definitions (a missing field is None).
    A formula's inputs compare field by field (`inputs.total.query`); lists such as `push`
    compare whole."""
    before, after = _flat(old or {}), _flat(new or {})
    names = set(before) | set(after)

    def order(name: str) -> tuple[int, str]:
        head = name.split(".", 1)[0]
        return (FIELD_ORDER.index(head) if head in FIELD_ORDER else len(FIELD_ORDER), name)

    out = {}
    for name in sorted(names, key=order):
        a, b = _normal(before.get(name)), _normal(after.get(name))
        if a != b:
            out[name] = Pair(before.get(name), after.get(name))
    return out


def _flat(definition: Mapping[str, Any]) -> dict[str, Any]:
    """`inputs: {total: {source, query}}` as `inputs.total.source`, `inputs.total.query`;
    `sources: {prom: {url}}` as `sources.prom.url`."""
    out = dict(definition)
    for group in ("inputs", "sources"):
        items = out.pop(group, None)
        if isinstance(items, dict):
            for name, measure in items.items():
                if isinstance(measure, dict):
                    out.update({f"{group}.{name}.{k}": v for k, v in measure.items()})
                else:
                    out[f"{group}.{name}"] = measure
        elif items is not None:
            out[group] = items
    return out


def _normal(value: Any) -> Any:
    """Equal definitions compare equal however they were written: `{}`, `[]` and None alike,
    whole floats as ints, mappings key-sorted."""
    if value in ({}, [], None):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def kr_definition(config: Config) -> dict[str, dict[str, Any]]:
    """Each KR's definition as the store keeps it (`key_results.definition`: with the
    sources it reads), plus the objective it belongs to."""
    return {k.id: {**config.definition(k), "objective": o.id} for o, k in config.key_results()}


def stored_definition(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored KR row as a definition (older rows without `definition`: its columns)."""
    base = row.get("definition")
    if not base:
        columns = ("title", "source", "unit", "start", "target", "weight", "every")
        base = {c: row.get(c) for c in columns}
    return {**base, "objective": row.get("objective_id")}


def objective_fields(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: item.get(k) for k in ("title", "owner", "parent", "weight")}


def after(
    defs: Definitions,
    known: Mapping[str, Observation],
    measured: list[Measurement],
    now: datetime,
) -> Tree:
    """The tree once `measured` were stored: as `status` would show it right after (an
    override holding at `now` keeps its value: automation records under it, nothing more)."""
    observations = dict(known)
    for m in measured:
        prior = observations.get(m.kr_id, Observation())
        observations[m.kr_id] = observe_held(
            prior, m.value, m.error, now, m.progress, m.status, m.slo
        )
    return evaluate(defs, observations, now)


def _views(tree: Tree | None) -> dict[str, KRView]:
    if tree is None:
        return {}
    return {k.kr.id: k for o in tree.walk() for k in o.key_results}


def compare(
    config: Config,
    applied: Mapping[str, Any],
    old: Tree | None,
    new: Tree,
    measured: list[Measurement],
) -> Plan:
    """The plan: each KR of the config (added, changed or unchanged), each KR the store has
    that the config no longer does (retired), and the same for objectives.

    `applied` is `Store.applied()`; `old` the store's tree as `status` shows it with the
    definitions last applied (None: the store knows no such period); `new` the tree after
    `measured` (see `after`). A KR whose measurement failed has no new value, progress or
    status: it is a change only if its definition is.
    """
    stored_krs: Mapping[str, Any] = applied.get("key_results", {})
    stored_objectives: Mapping[str, Any] = applied.get("objectives", {})
    before, now_views = _views(old), _views(new)
    results = {m.kr_id: m for m in measured}
    krs: list[KRPlan] = []
    for kr_id, definition in kr_definition(config).items():
        row = stored_krs.get(kr_id)
        live = row is not None and row.get("retired_at") is None
        fields = {}
        if live and row is not None:
            stored = stored_definition(row)
            if not row.get("definition"):  # an older store: compare the columns it kept
                definition = {k: v for k, v in definition.items() if k in stored}
            elif "sources" not in stored:  # applied before sources were kept: not a change
                definition = {k: v for k, v in definition.items() if k != "sources"}
            fields = diff_fields(stored, definition)
        was, will = before.get(kr_id), now_views[kr_id]
        m = results.get(kr_id)
        error = redact(m.error) if m is not None and m.error is not None else None
        value = Pair(_value(was), None if error else will.obs.value)
        progress = Pair(_progress(was), None if error else will.progress)
        status = Pair(was.status if was else None, None if error else will.status)
        moved = error is None and any(p.differs for p in (value, progress, status))
        action: Action = "add" if not live else "change" if fields or moved else "unchanged"
        shown = {} if action == "add" else fields
        unit = definition.get("unit")
        objective = definition.get("objective")
        krs.append(
            KRPlan(
                kr_id, objective, action, value, progress, status, shown, m is not None, unit, error
            )
        )
    for kr_id, row in sorted(stored_krs.items()):
        if kr_id in now_views or row.get("retired_at") is not None:
            continue
        was = before.get(kr_id)
        krs.append(
            KRPlan(
                kr_id,
                row.get("objective_id"),
                "retire",
                Pair(_value(was), None),
                Pair(_progress(was), None),
                Pair(was.status if was else None, None),
                unit=row.get("unit"),
            )
        )
    objectives: list[ObjectivePlan] = []
    for o in config.objectives:
        row = stored_objectives.get(o.id)
        if row is None or row.get("retired_at") is not None:
            objectives.append(ObjectivePlan(o.id, "add"))
            continue
        fields = diff_fields(objective_fields(row), objective_fields(vars(o)))
        objectives.append(ObjectivePlan(o.id, "change" if fields else "unchanged", fields))
    ids = {o.id for o in config.objectives}
    for oid, row in sorted(stored_objectives.items()):
        if oid not in ids and row.get("retired_at") is None:
            objectives.append(ObjectivePlan(oid, "retire"))
    return Plan(krs, objectives)


def _value(view: KRView | None) -> float | None:
    return view.obs.value if view is not None else None


def _progress(view: KRView | None) -> float | None:
    return view.progress if view is not None else None
