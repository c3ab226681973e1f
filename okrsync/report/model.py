"""What a report shows, read from the store: the (filtered) objective tree as of a moment,
the same tree as of `since`, and per KR its downsampled series and forecast."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from okrsync.errors import UsageError
from okrsync.progress.definitions import Definitions
from okrsync.progress.periods import choose, previous_values, resolve
from okrsync.progress.tree import KRView, ObjectiveView, Tree, evaluate
from okrsync.report.forecast import FALLBACK_POINTS, MAX_POINTS, WINDOW, Forecast, forecast
from okrsync.report.slo import SloPart, slo_part
from okrsync.store.series import SeriesPoint, recent_sums, series
from okrsync.store.store import Store

SINCE = timedelta(days=7)
ATTENTION = ("stale", "no_data")


class NotFound(UsageError):
    """A filter names a period, objective or owner the store and config do not know."""


@dataclass(frozen=True)
class Filters:
    period: str | None = None
    owner: str | None = None
    objective: str | None = None

    def describe(self) -> str:
        parts = [f"{k} {v}" for k, v in vars(self).items() if v is not None]
        return ", ".join(parts)


@dataclass
class KRReport:
    view: KRView
    objective: ObjectiveView
    then: KRView | None
    points: list[SeriesPoint]
    forecast: Forecast | str
    slo: SloPart | None = None
    """An SLO KR's objective, SLI, budget and burn (None for other KRs, or unread)."""


@dataclass
class Report:
    tree: Tree
    roots: list[ObjectiveView]
    """The objectives shown (filtered), with their shown children."""
    since: datetime
    filters: Filters
    krs: dict[str, KRReport] = field(default_factory=dict)

    def objectives(self) -> list[tuple[ObjectiveView, int]]:
        """Every shown objective with its depth, parents first."""
        out: list[tuple[ObjectiveView, int]] = []
        stack = [(r, 0) for r in reversed(self.roots)]
        while stack:
            view, depth = stack.pop()
            out.append((view, depth))
            stack.extend((c, depth + 1) for c in reversed(view.children))
        return out

    def key_results(self) -> list[KRReport]:
        return [self.krs[k.kr.id] for o, _ in self.objectives() for k in o.key_results]

    def attention(self) -> list[KRReport]:
        """Stale and no-data KRs, and any whose last attempt failed: stale first."""
        order = {"stale": 0, "no_data": 1}
        found = [
            k
            for k in self.key_results()
            if k.view.status in ATTENTION or (k.view.error is not None)
        ]
        return sorted(found, key=lambda k: order.get(k.view.status, 2))

    def changes(self) -> list[KRReport]:
        """KRs whose value or status differs from `since`: status changes first, then the
        biggest moves in progress."""
        changed = [k for k in self.key_results() if _changed(k)]

        def key(k: KRReport) -> tuple[int, float]:
            then = k.then
            moved = (k.view.progress or 0.0) - ((then.progress if then else None) or 0.0)
            status = then is None or then.status != k.view.status
            return (0 if status else 1, -abs(moved))

        return sorted(changed, key=key)


def _changed(k: KRReport) -> bool:
    then = k.then
    if then is None:
        return k.view.obs.value is not None
    return then.obs.value != k.view.obs.value or then.status != k.view.status


def build(
    current: Definitions,
    store: Store,
    now: datetime,
    filters: Filters,
    *,
    pinned: bool = False,
    since: datetime | None = None,
) -> Report:
    """The report of the period `filters.period` names (else the one containing `now`
    when `pinned`, else the config's), as of `now` (at most its end)."""
    chosen = choose(current, store, filters.period, now if pinned else None)
    defs = resolve(chosen, store, now)
    ids = [k.id for k in defs.key_results()]
    tree = evaluate(
        defs, store.observations(ids, now, defs.period), now, previous_values(defs, store, now)
    )
    roots = _filter(tree, filters)
    when = since if since is not None else tree.now - SINCE
    then_tree = evaluate(defs, store.observations(ids, when, defs.period), when)
    then = {k.kr.id: k for o in then_tree.walk() for k in o.key_results}
    report = Report(tree, roots, when, filters)
    period = defs.period
    for objective, _ in report.objectives():
        for view in objective.key_results:
            kr_id, obs = view.kr.id, view.obs
            # while an override holds, the automated values under it are not shown: the
            # chart ends at the value the bar shows, and the forecast starts from it
            held = obs.measured_at if obs.manual and obs.holds(tree.now) else None
            points = series(store, kr_id, period, tree.now, held_since=held)
            if tree.ended:
                outlook: Forecast | str = "the period has ended: its values are final"
            else:
                s = recent_sums(
                    store,
                    kr_id,
                    period,
                    tree.now,
                    WINDOW,
                    MAX_POINTS,
                    FALLBACK_POINTS,
                    held_since=held,
                )
                outlook = forecast(s, tree.now, period.ends_at)
            report.krs[kr_id] = KRReport(
                view, objective, then.get(kr_id), points, outlook, slo_part(view)
            )
    return report


def _filter(tree: Tree, filters: Filters) -> list[ObjectiveView]:
    roots = tree.roots
    every = tree.walk()
    if filters.objective is not None:
        found = [o for o in every if o.objective.id == filters.objective]
        if not found:
            known = ", ".join(sorted(o.objective.id for o in every)) or "none"
            raise NotFound(
                f"no objective '{filters.objective}' in {tree.defs.period.name} (known: {known})"
            )
        roots = found
    if filters.owner is not None:
        owners = {o.objective.owner for o in every if o.objective.owner}
        if filters.owner not in owners:
            known = ", ".join(sorted(owners)) or "none"
            raise NotFound(f"no objective owned by '{filters.owner}' (owners: {known})")
        roots = _owned(roots, filters.owner)
    return roots


def _owned(views: list[ObjectiveView], owner: str) -> list[ObjectiveView]:
    """The objectives under `views` owned by `owner`, each with its owned descendants;
    an owned objective under one owned by someone else is lifted to the top."""
    out: list[ObjectiveView] = []
    for view in views:
        kids = _owned(view.children, owner)
        if view.objective.owner == owner:
            out.append(replace(view, children=kids))
        else:
            out.extend(kids)
    return out


def by_owner(report: Report) -> dict[str, list[KRReport]]:
    """The shown KRs grouped by their objective's owner ('(no owner)' when unset)."""
    groups: dict[str, list[KRReport]] = {}
    for k in report.key_results():
        groups.setdefault(k.objective.objective.owner or "(no owner)", []).append(k)
    return dict(sorted(groups.items()))
