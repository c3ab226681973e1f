"""A KR's history as the report draws it: a bounded, downsampled series over a period,
and the least-squares sums of its recent values, read with indexed queries only.

Times come back as Unix seconds (the database parses them: SQLite's julianday, in C), so
a year of hourly points for 1,000 KRs is never parsed row by row in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from okrsync.config.model import Period
from okrsync.store import periods
from okrsync.store.store import Store
from okrsync.timefmt import to_text

BUCKETS = 60
"""A chart has at most this many points (plus the first): the last value in each of
BUCKETS equal slices of the period so far. Fewer values than 2 x BUCKETS are all drawn."""


@dataclass(frozen=True)
class SeriesPoint:
    at: float
    """Unix seconds."""
    value: float
    progress: float | None


@dataclass(frozen=True)
class Sums:
    """Least-squares sums over (x, y) = (days before `as_of`, value); `first` is the
    smallest x (where the fitted line starts)."""

    n: int
    sx: float
    sy: float
    sxx: float
    sxy: float
    first: float
    last: float = 0.0
    """The largest x (the newest value's)."""


def _member(period: Period, held_since: datetime | None) -> tuple[str, list[object]]:
    """The period's rows that show (superseded ones, re-measured by `backfill --replace`,
    never do); with `held_since` (an override holding since then), without the automated
    values recorded under it (they do not show while it holds)."""
    where, params = periods.member(period)
    where = f"{where} AND superseded = 0"
    if held_since is None:
        return where, list(params)
    return f"{where} AND NOT (manual = 0 AND measured_at > ?)", [*params, to_text(held_since)]


def series(
    store: Store,
    kr_id: str,
    period: Period,
    until: datetime,
    buckets: int = BUCKETS,
    *,
    held_since: datetime | None = None,
) -> list[SeriesPoint]:
    """The KR's values in `period` at or before `until`, oldest first, downsampled to the
    last value of each of `buckets` equal slices of [period start, until] when there are
    more than 2 x `buckets`. `held_since`: see `_member`."""
    where, params = _member(period, held_since)
    lo, hi = to_text(period.starts_at), to_text(min(until, period.ends_at))
    base = (
        f"FROM measurements WHERE kr_id = ? AND {where} AND value IS NOT NULL "
        "AND measured_at >= ? AND measured_at <= ?"
    )
    rows = store.db.execute(
        f"SELECT {store.db.epoch('measured_at')}, value, progress {base} "
        "ORDER BY measured_at, id LIMIT ?",
        [kr_id, *params, lo, hi, 2 * buckets + 1],
    ).fetchall()
    if len(rows) <= 2 * buckets:
        return [SeriesPoint(*r) for r in rows]
    first = rows[0]
    start, end = period.starts_at, min(until, period.ends_at)
    step = (end - start) / buckets
    edges = [to_text(start + step * i) for i in range(buckets)] + [hi]
    pairs = ", ".join("(?, ?)" for _ in range(buckets))
    bounds = [e for i in range(buckets) for e in (edges[i], edges[i + 1])]
    picked = store.db.execute(
        f"WITH b(lo, hi) AS (VALUES {pairs}) "
        f"SELECT {store.db.epoch('m.measured_at')}, m.value, m.progress "
        "FROM b JOIN measurements m ON m.id = ("
        f"SELECT id FROM measurements WHERE kr_id = ? AND {where} AND value IS NOT NULL "
        "AND measured_at > b.lo AND measured_at <= b.hi "
        "ORDER BY measured_at DESC, id DESC LIMIT 1) ORDER BY m.measured_at",
        [*bounds, kr_id, *params],
    ).fetchall()
    out = [SeriesPoint(*first)]
    out += [SeriesPoint(*r) for r in picked if r[0] > first[0]]
    return out


def recent_sums(
    store: Store,
    kr_id: str,
    period: Period,
    as_of: datetime,
    window: timedelta,
    limit: int,
    fallback: int,
    *,
    held_since: datetime | None = None,
) -> Sums:
    """Least-squares sums of the KR's values in `period` within `window` before `as_of`
    (the newest `limit` at most); when fewer than 2 are there, of its last `fallback`.
    `held_since`: see `_member`."""
    where, params = _member(period, held_since)
    at = to_text(as_of)
    x = f"({store.db.epoch('measured_at')} - {store.db.epoch('?')}) / 86400.0"
    inner = (
        f"SELECT {x} AS x, value AS y FROM measurements WHERE kr_id = ? AND {where} "
        "AND value IS NOT NULL AND measured_at <= ? {since} "
        "ORDER BY measured_at DESC, id DESC LIMIT ?"
    )
    outer = (
        "SELECT count(*), sum(x), sum(y), sum(x * x), sum(x * y), min(x), max(x) "
        "FROM ({inner}) AS recent"
    )
    row = store.db.execute(
        outer.format(inner=inner.format(since="AND measured_at > ?")),
        [at, kr_id, *params, at, to_text(as_of - window), limit],
    ).fetchone()
    if row[0] < 2:
        row = store.db.execute(
            outer.format(inner=inner.format(since="")), [at, kr_id, *params, at, fallback]
        ).fetchone()
    if not row[0]:
        return Sums(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    return Sums(int(row[0]), row[1], row[2], row[3], row[4], row[5], row[6])


def version(store: Store) -> int:
    """The newest measurement's id: it changes with every stored batch and check-in (what
    a cached report is keyed by)."""
    row = store.db.execute("SELECT max(id) FROM measurements").fetchone()
    return int(row[0] or 0)
