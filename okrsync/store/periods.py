"""The store's periods: which periods it has seen, what each was judged with, and which
measurements belong to each."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from okrsync.config.model import Grading, Period, Thresholds
from okrsync.progress.definitions import Definitions, from_rows, kr_row, objective_row
from okrsync.store.database import Database
from okrsync.timefmt import to_text


def member(period: Period) -> tuple[str, list[Any]]:
    """SQL (with its parameters) for "the measurement belongs to `period`": it was stored
    for it, or it predates periods in the store and was taken within its dates."""
    return (
        "(period = ? OR (period IS NULL AND measured_at >= ? AND measured_at < ?))",
        [period.name, to_text(period.starts_at), to_text(period.ends_at)],
    )


def record(db: Database, defs: Definitions, now: datetime) -> None:
    """Remember the period and the definitions it has now; adopt the measurements taken
    within its dates that belong to no period yet (call inside a transaction)."""
    p = defs.period
    stamp = to_text(now)
    seen = db.execute("SELECT first_seen_at FROM periods WHERE name = ?", [p.name]).fetchone()
    db.upsert_all(
        "periods",
        [
            {
                "name": p.name,
                "start": p.start.isoformat(),
                "end": p.end.isoformat(),
                "timezone": p.timezone,
                "starts_at": to_text(p.starts_at),
                "ends_at": to_text(p.ends_at),
                "thresholds": defs.thresholds.model_dump_json(),
                "grading": defs.grading.model_dump_json(),
                "first_seen_at": seen[0] if seen else stamp,
                "updated_at": stamp,
            }
        ],
        key="name",
    )
    for table in ("period_objectives", "period_key_results"):
        db.execute(f"DELETE FROM {table} WHERE period = ?", [p.name])
    db.insert_all(
        "period_objectives",
        (
            {"period": p.name, "position": i, **objective_row(o)}
            for i, o in enumerate(defs.objectives)
        ),
    )
    db.insert_all(
        "period_key_results",
        ({"period": p.name, "position": i, **kr_row(k)} for i, k in enumerate(defs.key_results())),
    )
    db.execute(
        "UPDATE measurements SET period = ? WHERE period IS NULL "
        "AND measured_at >= ? AND measured_at < ?",
        [p.name, to_text(p.starts_at), to_text(p.ends_at)],
    )


def _period(row: dict[str, Any]) -> Period:
    return Period(
        name=row["name"],
        start=date.fromisoformat(row["start"]),
        end=date.fromisoformat(row["end"]),
        timezone=row["timezone"],
    )


def known(db: Database) -> list[Period]:
    """Every period the store has seen, earliest first."""
    rows = db.query("SELECT * FROM periods ORDER BY starts_at, name")
    return [_period(r) for r in rows]


def definitions(db: Database, name: str) -> Definitions | None:
    """A stored period with the definitions it was last judged with (None: unknown)."""
    rows = list(db.query("SELECT * FROM periods WHERE name = ?", [name]))
    if not rows:
        return None
    row = rows[0]
    objectives = list(
        db.query("SELECT * FROM period_objectives WHERE period = ? ORDER BY position", [name])
    )
    krs = list(
        db.query("SELECT * FROM period_key_results WHERE period = ? ORDER BY position", [name])
    )
    return from_rows(
        _period(row),
        Thresholds.model_validate_json(row["thresholds"]),
        Grading.model_validate_json(row["grading"]),
        objectives,
        krs,
    )


def final_values(
    db: Database, kr_ids: list[str], period: Period, until: datetime
) -> dict[str, float]:
    """Each KR's latest value in `period`, as known at `until` (superseded rows, re-measured
    by `backfill --replace`, left out)."""
    where, params = member(period)
    out: dict[str, float] = {}
    for kr_id in kr_ids:
        row = db.execute(
            f"SELECT value FROM measurements WHERE kr_id = ? AND {where} AND measured_at <= ? "
            "AND value IS NOT NULL AND superseded = 0 ORDER BY measured_at DESC, id DESC LIMIT 1",
            [kr_id, *params, to_text(until)],
        ).fetchone()
        if row is not None:
            out[kr_id] = row[0]
    return out
