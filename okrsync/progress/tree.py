"""The objective tree as of a moment: KR values from the store, progress and status rolled up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from okrsync.config.model import Grading
from okrsync.progress.definitions import Definitions, KRDef, ObjectiveDef
from okrsync.progress.grading import Grade, grade, kr_score, mean_score
from okrsync.progress.maths import (
    Observation,
    Status,
    clamp,
    classify,
    expected_progress,
    kr_progress,
    weighted_mean,
)
from okrsync.progress.status import judge, judged_slo

SLO_FIELDS = (
    "objective",
    "window",
    "sli",
    "good",
    "total",
    "error_budget_remaining",
    "burn_rates",
    "alerts_firing",
    "rendered_window",
)


@dataclass(frozen=True)
class Previous:
    """A KR's final value in the period before, and its score there."""

    period: str
    value: float
    score: float | None


@dataclass
class KRView:
    kr: KRDef
    obs: Observation
    progress_raw: float | None
    status: Status
    grading: Grading
    previous: Previous | None = None
    problem: str | None = None

    @property
    def progress(self) -> float | None:
        return None if self.progress_raw is None else clamp(self.progress_raw)

    @property
    def score(self) -> float | None:
        return kr_score(self.progress_raw)

    @property
    def grade(self) -> Grade | None:
        return grade(self.score, self.kr.kind, self.grading)

    @property
    def error(self) -> str | None:
        return self.problem or self.obs.error

    def as_json(self) -> dict[str, Any]:
        kr = self.kr
        previous = self.previous
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
            "backfilled": self.obs.backfilled,
            "source": kr.source,
            "error": self.error,
            "last_attempt_at": _iso(self.obs.attempted_at),
            "kind": kr.kind,
            "score": self.score,
            "grade": self.grade,
            "start_from": "previous" if kr.start_from_previous else None,
            "previous": None
            if previous is None
            else {"period": previous.period, "value": previous.value, "score": previous.score},
            "override": None
            if self.obs.until is None
            else {"author": self.obs.author, "note": self.obs.note, "until": _iso(self.obs.until)},
            "slo": self.slo_json(),
        }

    def slo_json(self) -> dict[str, Any] | None:
        """An SLO KR's objective and window with its latest reading (null fields before
        the first one, or when the value shown is a check-in)."""
        if self.kr.slo is None:
            return None
        reading = self.obs.slo_shown
        out: dict[str, Any] = dict.fromkeys(SLO_FIELDS)
        if reading is not None:
            out |= {k: v for k, v in reading.as_json().items() if k in SLO_FIELDS}
        out |= {"objective": self.kr.slo.objective, "window": self.kr.slo.window}
        if reading is None:
            out |= {"burn_rates": {}, "alerts_firing": []}
        return out


@dataclass
class ObjectiveView:
    objective: ObjectiveDef
    key_results: list[KRView]
    children: list[ObjectiveView]
    progress: float | None
    status: Status
    without_data: int
    items: int
    score: float | None = None
    grade: Grade | None = None

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
                "kind": o.kind,
                "score": view.score,
                "grade": view.grade,
                "key_results": [k.as_json() for k in view.key_results],
                "children": [done.pop(id(c)) for c in view.children],
            }
        return done[id(self)]


@dataclass
class Tree:
    """The period's objectives as of `now`; `ended` once `now` is past the period's end."""

    defs: Definitions
    now: datetime
    expected: float
    ended: bool = False
    roots: list[ObjectiveView] = field(default_factory=list)

    def walk(self) -> list[ObjectiveView]:
        return _preorder(self.roots)

    @property
    def average_score(self) -> float | None:
        """The period's score: its top-level objectives' scores, weighted as they are."""
        return mean_score([(r.score, r.objective.weight) for r in self.roots])


def _preorder(roots: list[ObjectiveView]) -> list[ObjectiveView]:
    """Every view under `roots`, each parent before its children, walked without recursion."""
    out: list[ObjectiveView] = []
    stack = list(reversed(roots))
    while stack:
        view = stack.pop()
        out.append(view)
        stack.extend(reversed(view.children))
    return out


def evaluate(
    defs: Definitions,
    observations: dict[str, Observation],
    now: datetime,
    previous: dict[str, Previous] | None = None,
) -> Tree:
    """Evaluate every objective as of `now` (at most the period's end) from the latest
    observation of each KR in the period."""
    period = defs.period
    ended = now >= period.ends_at
    now = min(now, period.ends_at)
    expected = expected_progress(period.starts_at, period.ends_at, now)
    thresholds = defs.thresholds
    earlier = previous or {}
    children = _children(defs)

    def kr_view(kr: KRDef) -> KRView:
        obs = observations.get(kr.id, Observation())
        if kr.slo is not None:
            obs = judged_slo(kr.slo, obs)  # what status, metrics and the report show
        max_age = None if ended else kr.max_age  # an ended period's values are final, not old
        raw, status = judge(defs, kr, obs, now, max_age)
        problem = defs.start_problem(kr)
        if problem is not None:
            status = "no_data"
        return KRView(kr, obs, raw, status, defs.grading, earlier.get(kr.id), problem)

    def view(objective: ObjectiveDef, kids: list[ObjectiveView]) -> ObjectiveView:
        krs = [kr_view(kr) for kr in objective.key_results]
        items = [(k.progress, k.kr.weight) for k in krs]
        items += [(c.progress, c.objective.weight) for c in kids]
        progress, missing = weighted_mean(items)
        status: Status = "no_data" if progress is None else classify(progress, expected, thresholds)
        if status == "done" and _still_running(krs, kids):
            status = "on_track"
        scores = [(k.score, k.kr.weight) for k in krs]
        scores += [(c.score, c.objective.weight) for c in kids]
        score = mean_score(scores)
        return ObjectiveView(
            objective,
            krs,
            kids,
            progress,
            status,
            missing,
            len(items),
            score,
            grade(score, objective.kind, defs.grading),
        )

    views: dict[int, ObjectiveView] = {}
    for objective in _bottom_up(children):
        kids = [views.pop(id(c)) for c in children.get(objective.id, [])]
        views[id(objective)] = view(objective, kids)
    roots = [views[id(o)] for o in children.get(None, [])]
    return Tree(defs, now, expected, ended, roots)


def rolled_progress(
    defs: Definitions, values: Mapping[str, float | None]
) -> dict[str, float | None]:
    """Each objective's progress from its KRs' latest values, as `evaluate` rolls it up,
    without judging status or age: what the outbox needs on every run, at a fraction of
    the cost of a whole tree."""
    children = _children(defs)
    done: dict[int, float | None] = {}
    out: dict[str, float | None] = {}
    for objective in _bottom_up(children):
        items: list[tuple[float | None, float]] = []
        for kr in objective.key_results:
            value = values.get(kr.id)
            raw = (
                None
                if value is None or kr.start is None
                else kr_progress(value, kr.start, kr.target)
            )
            items.append((None if raw is None else clamp(raw), kr.weight))
        items += [(done.pop(id(c)), c.weight) for c in children.get(objective.id, [])]
        done[id(objective)] = out[objective.id] = weighted_mean(items)[0]
    return out


def _children(defs: Definitions) -> dict[str | None, list[ObjectiveDef]]:
    children: dict[str | None, list[ObjectiveDef]] = {}
    for objective in defs.objectives:
        children.setdefault(objective.parent, []).append(objective)
    return children


def _bottom_up(children: dict[str | None, list[ObjectiveDef]]) -> list[ObjectiveDef]:
    """Every objective under a root, children before their parent, found without
    recursion: a long chain of parents is no danger to the stack (a cycle never reaches
    a root, so it is not walked at all)."""
    order: list[ObjectiveDef] = []
    stack = list(children.get(None, []))
    while stack:
        objective = stack.pop()
        order.append(objective)
        stack.extend(children.get(objective.id, []))
    return order[::-1]


def _still_running(krs: list[KRView], kids: list[ObjectiveView]) -> bool:
    """An SLO KR at its objective is not done while the period runs, nor is an objective
    whose full progress rests on one."""
    return any(k.kr.slo is not None and k.progress == 1 and k.status != "done" for k in krs) or any(
        c.progress == 1 and c.status != "done" for c in kids
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
