"""The objective tree as of a moment: KR values from the store, progress and status rolled up."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from okrsync.config.loader import Config
from okrsync.config.model import KeyResult, Objective
from okrsync.progress.maths import (
    Observation,
    Status,
    clamp,
    classify,
    expected_progress,
    weighted_mean,
)
from okrsync.progress.status import judge


@dataclass
class KRView:
    kr: KeyResult
    obs: Observation
    progress_raw: float | None
    status: Status

    @property
    def progress(self) -> float | None:
        return None if self.progress_raw is None else clamp(self.progress_raw)

    def as_json(self) -> dict[str, Any]:
        kr = self.kr
        return {
            "id": kr.id,
            "title": kr.title,
            "value": self.obs.value,
            "start": kr.start,
            "target": kr.target,
            "unit": kr.unit,
            "weight": kr.weight,
            "progress": self.progress,
            "progress_raw": self.progress_raw,
            "status": self.status,
            "measured_at": _iso(self.obs.measured_at),
            "manual": self.obs.manual,
            "source": "formula" if kr.formula else kr.source,
            "error": self.obs.error,
            "last_attempt_at": _iso(self.obs.attempted_at),
        }


@dataclass
class ObjectiveView:
    objective: Objective
    key_results: list[KRView]
    children: list[ObjectiveView]
    progress: float | None
    status: Status
    without_data: int
    items: int

    def as_json(self) -> dict[str, Any]:
        """This objective and its descendants as JSON (built without recursion, so a long
        chain of parents cannot exhaust the stack)."""
        done: dict[int, dict[str, Any]] = {}
        for view in reversed(_preorder([self])):  # children before their parent
            o = view.objective
            done[id(view)] = {
                "id": o.id,
                "title": o.title,
                "owner": o.owner,
                "parent": o.parent,
                "weight": o.weight,
                "progress": view.progress,
                "status": view.status,
                "items": view.items,
                "items_without_data": view.without_data,
                "key_results": [k.as_json() for k in view.key_results],
                "children": [done.pop(id(c)) for c in view.children],
            }
        return done[id(self)]


@dataclass
class Tree:
    now: datetime
    expected: float
    roots: list[ObjectiveView] = field(default_factory=list)

    def walk(self) -> list[ObjectiveView]:
        return _preorder(self.roots)


def _preorder(roots: list[ObjectiveView]) -> list[ObjectiveView]:
    """Every view under `roots`, each parent before its children, walked without recursion."""
    out: list[ObjectiveView] = []
    stack = list(reversed(roots))
    while stack:
        view = stack.pop()
        out.append(view)
        stack.extend(reversed(view.children))
    return out


def evaluate(config: Config, observations: dict[str, Observation], now: datetime) -> Tree:
    """Evaluate every objective as of `now` from the latest observation of each KR."""
    period = config.period
    expected = expected_progress(period.starts_at, period.ends_at, now)
    thresholds = config.defaults.thresholds
    children: dict[str | None, list[Objective]] = {}
    for objective in config.objectives:
        children.setdefault(objective.parent, []).append(objective)

    def kr_view(kr: KeyResult) -> KRView:
        obs = observations.get(kr.id, Observation())
        raw, status = judge(config, kr, obs, now, _max_age(config, kr))
        return KRView(kr, obs, raw, status)

    def view(objective: Objective, kids: list[ObjectiveView]) -> ObjectiveView:
        krs = [kr_view(kr) for kr in objective.key_results]
        items = [(k.progress, k.kr.weight) for k in krs]
        items += [(c.progress, c.objective.weight) for c in kids]
        progress, missing = weighted_mean(items)
        status: Status = "no_data" if progress is None else classify(progress, expected, thresholds)
        return ObjectiveView(objective, krs, kids, progress, status, missing, len(items))

    # children before their parent, without recursion: a long chain of parents is no
    # danger to the stack (a cycle never reaches a root, so it is not walked at all)
    order: list[Objective] = []
    stack = list(children.get(None, []))
    while stack:
        objective = stack.pop()
        order.append(objective)
        stack.extend(children.get(objective.id, []))
    views: dict[int, ObjectiveView] = {}
    for objective in reversed(order):
        kids = [views.pop(id(c)) for c in children.get(objective.id, [])]
        views[id(objective)] = view(objective, kids)
    return Tree(now, expected, [views[id(o)] for o in children.get(None, [])])


def _max_age(config: Config, kr: KeyResult) -> float | None:
    """Age after which a value is stale: stale_after x interval; manual KRs only with `every`."""
    if kr.is_manual and kr.every is None:
        return None
    return config.defaults.stale_after * config.every_seconds(kr)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
