"""The one status step: a measurement (an attempt or a check-in) gets its progress and status.

Used alike by `sync --once`, the daemon and `checkin`, so a value is judged the same way
wherever it was taken.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime

from okrsync.config.model import KeyResult
from okrsync.measure.measurement import Measurement
from okrsync.measure.measurer import failure
from okrsync.progress.definitions import Definitions, KRDef, SloTarget
from okrsync.progress.maths import (
    Observation,
    Status,
    expected_progress,
    kr_progress,
    kr_status,
    observe,
    slo_status,
)


def judge(
    defs: Definitions, kr: KRDef, obs: Observation, now: datetime, max_age: float | None
) -> tuple[float | None, Status]:
    """Raw progress of what is known of a KR, and its status as of `now` (stale once the
    value is older than `max_age` seconds; None: never by age). No baseline: no progress."""
    progress = (
        None
        if obs.value is None or kr.start is None
        else kr_progress(obs.value, kr.start, kr.target)
    )
    period = defs.period
    expected = expected_progress(period.starts_at, period.ends_at, now)
    if kr.slo is not None:
        obs = judged_slo(kr.slo, obs)
        ended = now >= period.ends_at
        return progress, slo_status(
            obs, kr.slo.objective, kr.slo.rolling, expected, ended, now, max_age
        )
    return progress, kr_status(obs, progress, expected, now, max_age, defs.thresholds)


def judged_slo(slo: SloTarget, obs: Observation) -> Observation:
    """`obs` with its SLO reading against the KR's objective now (a reading taken before
    the objective changed is rescaled); unchanged without a reading."""
    if obs.slo is None or obs.slo.objective == slo.objective:
        return obs
    return replace(obs, slo=obs.slo.against(slo.objective))


def assess(defs: Definitions, kr: KRDef, m: Measurement, prior: Observation) -> Measurement:
    """`m` with raw progress (None without a value) and its status as of `m.measured_at`.

    A failed attempt is judged on the prior value (it turns `stale`), never on nothing;
    a KR whose `start: previous` has no baseline gets an error row, never a progress.
    """
    now = m.measured_at
    problem = defs.start_problem(kr)
    if problem is not None and m.value is not None:
        m = replace(m, value=None, error=problem)
    progress = None
    if m.value is not None and kr.start is not None:
        progress = kr_progress(m.value, kr.start, kr.target)
        if not math.isfinite(progress):
            m = replace(m, value=None, error=f"value {m.value:g} is too large to give a progress")
            progress = None
    _, status = judge(defs, kr, observe(prior, m.value, m.error, now, slo=m.slo), now, None)
    return replace(m, progress=progress, status=status)


def assess_all(
    defs: Definitions,
    krs: list[KeyResult],
    taken: list[Measurement],
    before: dict[str, Observation],
    now: datetime,
) -> list[Measurement]:
    """Every KR gets its row: assessed against what was known of it before, or (if a bug
    got in the way) failed with the error, judged as a failed attempt is."""
    by_id = {m.kr_id: m for m in taken}
    rows = []
    for kr in krs:
        prior = before.get(kr.id, Observation())
        try:
            m = by_id.get(kr.id) or failure(kr, now, LookupError("the measurer gave no result"))
            found = defs.kr(kr.id)
            if found is None:
                raise LookupError(f"key result '{kr.id}' is not in the period's definitions")
            rows.append(assess(defs, found, m, prior))
        except Exception as exc:
            row = failure(kr, now, exc)
            rows.append(replace(row, status="no_data" if prior.value is None else "stale"))
    return rows
