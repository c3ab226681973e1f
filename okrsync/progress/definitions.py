"""What a period is judged against: its dates, bands and the KR and objective definitions.

Built from the config for the running period, or from the store for a past one, so an
ended period is judged with the targets it had, not today's.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from okrsync.config.loader import Config
from okrsync.config.model import MANUAL, Grading, KeyResult, Kind, Period, Thresholds
from okrsync.config.slo import PERIOD


@dataclass(frozen=True)
class SloTarget:
    """An SLO KR's objective (percent of good events) and window (`period` or rolling)."""

    objective: float
    window: str

    @property
    def rolling(self) -> bool:
        return self.window != PERIOD


@dataclass(frozen=True)
class KRDef:
    """One KR as a period knows it. `start` is None while `start: previous` is unresolved."""

    id: str
    objective_id: str
    title: str | None
    unit: str | None
    source: str | None
    start: float | None
    target: float
    weight: float
    kind: Kind
    max_age: float | None
    start_from_previous: bool = False
    slo: SloTarget | None = None
    """Set for an SLO KR: its status follows the error budget, not the linear rule."""

    @property
    def is_manual(self) -> bool:
        return self.source == MANUAL


@dataclass(frozen=True)
class ObjectiveDef:
    id: str
    title: str
    owner: str | None
    parent: str | None
    weight: float
    kind: Kind
    key_results: tuple[KRDef, ...] = ()


@dataclass(frozen=True)
class Definitions:
    """A period and everything it is judged with; `previous` names the period before it."""

    period: Period
    thresholds: Thresholds
    grading: Grading
    objectives: tuple[ObjectiveDef, ...]
    previous: str | None = None

    def key_results(self) -> list[KRDef]:
        return [kr for o in self.objectives for kr in o.key_results]

    @cached_property
    def _by_id(self) -> dict[str, KRDef]:
        return {k.id: k for k in self.key_results()}

    def kr(self, kr_id: str) -> KRDef | None:
        return self._by_id.get(kr_id)

    def with_starts(self, starts: dict[str, float | None], previous: str | None) -> Definitions:
        """The `start: previous` KRs given their baselines (None: there was no value)."""
        objectives = tuple(
            replace(
                o,
                key_results=tuple(
                    replace(k, start=starts.get(k.id)) if k.start_from_previous else k
                    for k in o.key_results
                ),
            )
            for o in self.objectives
        )
        return replace(self, objectives=objectives, previous=previous)

    def start_problem(self, kr: KRDef) -> str | None:
        """Why `kr` has no baseline, if it has none."""
        if kr.start is not None:
            return None
        where = self.previous or f"the store has no period before {self.period.name}"
        return f"start: previous, but there is no value in the previous period ({where})"


def max_age(config: Config, kr: KeyResult) -> float | None:
    """Age after which a value is stale: stale_after x interval; manual KRs only with `every`."""
    if kr.is_manual and kr.every is None:
        return None
    return config.defaults.stale_after * config.every_seconds(kr)


def from_config(config: Config) -> Definitions:
    """The running period's definitions, as the config states them (baselines unresolved)."""
    default = config.defaults.kind
    objectives = []
    for o in config.objectives:
        kind = o.kind or default
        krs = tuple(
            KRDef(
                id=k.id,
                objective_id=o.id,
                title=k.title,
                unit=k.unit,
                source="formula" if k.formula else k.source,
                start=None if k.start_from_previous else float(k.start),
                target=k.target,
                weight=k.weight,
                kind=k.kind or kind,
                max_age=max_age(config, k),
                start_from_previous=k.start_from_previous,
                slo=_slo_target(k),
            )
            for k in o.key_results
        )
        objectives.append(ObjectiveDef(o.id, o.title, o.owner, o.parent, o.weight, kind, krs))
    return Definitions(
        config.period, config.defaults.thresholds, config.defaults.grading, tuple(objectives)
    )


def _slo_target(kr: KeyResult) -> SloTarget | None:
    if kr.slo is None or kr.slo.objective is None:
        return None
    return SloTarget(kr.slo.objective, kr.slo.window)


def kr_row(kr: KRDef) -> dict[str, Any]:
    """A KR definition as the store keeps it."""
    return {
        "kr_id": kr.id,
        "objective_id": kr.objective_id,
        "title": kr.title,
        "unit": kr.unit,
        "source": kr.source,
        "start": None if kr.start_from_previous else kr.start,
        "start_from_previous": int(kr.start_from_previous),
        "target": kr.target,
        "weight": kr.weight,
        "kind": kr.kind,
        "max_age": kr.max_age,
        "slo": json.dumps(dataclasses.asdict(kr.slo)) if kr.slo else None,
    }


def objective_row(o: ObjectiveDef) -> dict[str, Any]:
    return {
        "objective_id": o.id,
        "title": o.title,
        "owner": o.owner,
        "parent": o.parent,
        "weight": o.weight,
        "kind": o.kind,
    }


def from_rows(
    period: Period,
    thresholds: Thresholds,
    grading: Grading,
    objectives: list[dict[str, Any]],
    krs: list[dict[str, Any]],
) -> Definitions:
    """A stored period's definitions, from the rows `kr_row` and `objective_row` made."""
    by_objective: dict[str, list[KRDef]] = {}
    for r in krs:
        by_objective.setdefault(r["objective_id"], []).append(
            KRDef(
                id=r["kr_id"],
                objective_id=r["objective_id"],
                title=r["title"],
                unit=r["unit"],
                source=r["source"],
                start=r["start"],
                target=r["target"],
                weight=r["weight"],
                kind=r["kind"],
                max_age=r["max_age"],
                start_from_previous=bool(r["start_from_previous"]),
                slo=SloTarget(**json.loads(r["slo"])) if r.get("slo") else None,
            )
        )
    return Definitions(
        period,
        thresholds,
        grading,
        tuple(
            ObjectiveDef(
                o["objective_id"],
                o["title"],
                o["owner"],
                o["parent"],
                o["weight"],
                o["kind"],
                tuple(by_objective.get(o["objective_id"], [])),
            )
            for o in objectives
        ),
    )
