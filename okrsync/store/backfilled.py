"""What a backfill reads and marks in the store: the instants a KR already has a value
for, and the older backfilled values a `--replace` supersedes (kept, never shown)."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from okrsync.store.store import Store
from okrsync.timefmt import from_text, to_text


def _valued(
    store: Store, kr_id: str, lo: datetime, hi: datetime, *, backfilled: bool | None
) -> list[tuple[int, datetime]]:
    """(id, measured_at) of the KR's shown values in [lo, hi], oldest first; `backfilled`
    True or False keeps only those (None: every one)."""
    sql = (
        "SELECT id, measured_at FROM measurements WHERE kr_id = ? AND measured_at >= ? "
        "AND measured_at <= ? AND value IS NOT NULL AND superseded = 0"
    )
    if backfilled is not None:
        sql += f" AND backfilled = {int(backfilled)}"
    rows = store.db.execute(sql + " ORDER BY measured_at", [kr_id, to_text(lo), to_text(hi)])
    return [(int(r[0]), from_text(r[1])) for r in rows.fetchall()]


def near(instants: list[datetime], taken: list[datetime], half: timedelta) -> set[datetime]:
    """The instants with a `taken` moment less than `half` away (`taken` sorted)."""
    out: set[datetime] = set()
    for at in instants:
        i = bisect.bisect_right(taken, at - half)
        if i < len(taken) and taken[i] - at < half:
            out.add(at)
    return out


def existing(
    store: Store, kr_id: str, instants: list[datetime], step: timedelta, *, live_only: bool
) -> set[datetime]:
    """The instants where the KR already has a value within half a step (`live_only`:
    a live or checked-in one; backfilled ones do not count, `--replace` re-measures them)."""
    if not instants:
        return set()
    half = step / 2
    rows = _valued(
        store,
        kr_id,
        instants[0] - half,
        instants[-1] + half,
        backfilled=False if live_only else None,
    )
    return near(instants, [at for _, at in rows], half)


def supersede(
    store: Store,
    kr_id: str,
    instants: list[datetime],
    step: timedelta,
    keep: list[datetime],
) -> int:
    """Mark the KR's backfilled values over the span of `instants` superseded, except those
    within half a step of a `keep` instant (where re-measuring failed: a failed re-measure
    never leaves a hole); call inside the transaction that writes the new values. How many."""
    if not instants:
        return 0
    half = step / 2
    rows = _valued(store, kr_id, instants[0] - half, instants[-1] + half, backfilled=True)
    kept = sorted(keep)
    ids = [i for i, at in rows if not near([at], kept, half)]
    for chunk in range(0, len(ids), 500):
        part = ids[chunk : chunk + 500]
        store.db.execute(
            f"UPDATE measurements SET superseded = 1 WHERE id IN ({','.join('?' * len(part))})",
            part,
        )
    return len(ids)


def update_run(store: Store, run_id: str, finished: datetime, written: int, failed: int) -> None:
    """Add one KR's counts to the backfill run (inside that KR's transaction)."""
    store.db.execute(
        "UPDATE runs SET finished_at = ?, measured = coalesce(measured, 0) + ?, "
        "failed = coalesce(failed, 0) + ? WHERE id = ?",
        [to_text(finished), written, failed, run_id],
    )


def backfilled_krs(store: Store, kr_ids: list[str], since: datetime) -> set[str]:
    """The KRs with a backfilled value at or after `since` (the daemon backfills a KR once)."""
    out: set[str] = set()
    for kr_id in kr_ids:
        row = store.db.execute(
            "SELECT 1 FROM measurements WHERE kr_id = ? AND measured_at >= ? "
            "AND backfilled = 1 LIMIT 1",
            [kr_id, to_text(since)],
        ).fetchone()
        if row is not None:
            out.add(kr_id)
    return out


@contextmanager
def bulk(store: Store) -> Iterator[None]:
    """A backfill's many small transactions commit without waiting for the disk where the
    engine allows it (SQLite: WAL with synchronous=NORMAL, never a corrupt store; a power
    cut may lose the last KRs stored, which a re-run measures again)."""
    with store.db.bulk_writes():
        yield
