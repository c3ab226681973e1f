"""The one status step: a measurement (an attempt or a check-in) gets its progress and status.

Used alike by `sync --once`, the daemon and `checkin`, so a value is judged the same way
wherever it was taken.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime

from okrsync.config.loader import Config
from okrsync.config.model import KeyResult
from okrsync.measure.measurement import Measurement
from okrsync.measure.measurer import failure
from okrsync.progress.maths import (
    Observation,
    Status,
    expected_progress,
    kr_progress,
    kr_status,
    observe,
)


def judge(
    config: Config, kr: KeyResult, obs: Observation, now: datetime, max_age: float | None
) -> tuple[float | None, Status]:
    """Raw progress of what is known of a KR, and its status as of `now` (stale once the
    value is older than `max_age` seconds; None: never by age)."""
    progress = None if obs.value is None else kr_progress(obs.value, kr.start, kr.target)
    expected = expected_progress(config.period.starts_at, config.period.ends_at, now)
    return progress, kr_status(obs, progress, expected, now, max_age, config.defaults.thresholds)


def assess(config: Config, kr: KeyResult, m: Measurement, prior: Observation) -> Measurement:
    """`m` with raw progress (None without a value) and its status as of `m.measured_at`.

    A failed attempt is judged on the prior value (it turns `stale`), never on nothing.
    """
    now = m.measured_at
    progress = None if m.value is None else kr_progress(m.value, kr.start, kr.target)
    if progress is not None and not math.isfinite(progress):
        m = replace(m, value=None, error=f"value {m.value:g} is too large to give a progress")
        progress = None
    _, status = judge(config, kr, observe(prior, m.value, m.error, now), now, None)
    return replace(m, progress=progress, status=status)


def assess_all(
    config: Config,
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
            rows.append(assess(config, kr, m, prior))
        except Exception as exc:
            row = failure(kr, now, exc)
            rows.append(replace(row, status="no_data" if prior.value is None else "stale"))
    return rows
