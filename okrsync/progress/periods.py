"""Which period a moment belongs to, and what a period inherits from the one before it
(`start: previous` baselines, last period's values), read through a `PeriodReader`."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from okrsync.config.model import Period
from okrsync.errors import UsageError
from okrsync.progress.definitions import Definitions
from okrsync.progress.grading import kr_score
from okrsync.progress.maths import kr_progress
from okrsync.progress.tree import Previous


class PeriodReader(Protocol):
    """What this module needs of a store (the SQLite store is one)."""

    def periods(self) -> list[Period]: ...

    def definitions(self, name: str) -> Definitions | None: ...

    def final_values(
        self, kr_ids: list[str], period: Period, until: datetime
    ) -> dict[str, float]: ...


def contains(period: Period, moment: datetime) -> bool:
    return period.starts_at <= moment < period.ends_at


def dates(period: Period) -> str:
    return f"{period.name} ({period.start} to {period.end})"


def known_list(current: Period, stored: list[Period]) -> str:
    """`2026-Q4 (2026-10-01 to 2026-12-31), 2027-Q1 (...)`: every period known, in order."""
    every = {p.name: p for p in stored} | {current.name: current}
    return ", ".join(dates(p) for p in sorted(every.values(), key=lambda p: p.starts_at))


def predecessor(period: Period, stored: list[Period]) -> Period | None:
    """The stored period that started last before `period` did."""
    earlier = [p for p in stored if p.starts_at < period.starts_at and p.name != period.name]
    return max(earlier, key=lambda p: p.starts_at) if earlier else None


def resolve(defs: Definitions, reader: PeriodReader, until: datetime) -> Definitions:
    """`defs` with each `start: previous` baseline read: the KR's final value in the period
    before (as known at `until`)."""
    before = predecessor(defs.period, reader.periods())
    wanted = [k.id for k in defs.key_results() if k.start_from_previous]
    starts: dict[str, float | None] = {}
    if before is not None and wanted:
        starts.update(reader.final_values(wanted, before, until))
    return defs.with_starts(starts, before.name if before else None)


def previous_values(
    defs: Definitions, reader: PeriodReader, until: datetime
) -> dict[str, Previous]:
    """Each KR's final value in the period before `defs.period`, and its score there (judged
    with that period's own definitions)."""
    before = predecessor(defs.period, reader.periods())
    if before is None:
        return {}
    values = reader.final_values([k.id for k in defs.key_results()], before, until)
    old = reader.definitions(before.name)
    old = resolve(old, reader, until) if old is not None else None
    out = {}
    for kr_id, value in values.items():
        kr = old.kr(kr_id) if old is not None else None
        score = None
        if kr is not None and kr.start is not None:
            score = kr_score(kr_progress(value, kr.start, kr.target))
        out[kr_id] = Previous(before.name, value, score)
    return out


def choose(
    current: Definitions, reader: PeriodReader, name: str | None, at: datetime | None
) -> Definitions:
    """The period to show: `name`'s; else the one containing `at` (the config's when `at`
    is past its end); else the config's. UsageError (exit 2) for any other moment or name."""
    period = current.period
    if name is not None:
        found = current if name == period.name else reader.definitions(name)
        if found is None:
            raise UsageError(
                f"--period {name}: no such period; known: {known_list(period, reader.periods())}"
            )
        return found
    if at is None or contains(period, at) or at >= period.ends_at:
        return current
    stored = [p for p in reader.periods() if p.name != period.name and contains(p, at)]
    if stored:
        latest = max(stored, key=lambda p: p.starts_at)
        found = reader.definitions(latest.name)
        if found is not None:
            return found
    raise UsageError(
        f"--now {at:%Y-%m-%dT%H:%M:%SZ} is in no known period; "
        f"known: {known_list(period, reader.periods())}"
    )
