"""What the store knows of a KR at a moment: its observation (latest value and attempt,
or the manual override that holds), and the single measurements `explain` looks at; each
an indexed LIMIT 1 query, whatever the history's length."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from okrsync.config.model import Period
from okrsync.measure.slo_reading import SloReading
from okrsync.progress.maths import Observation
from okrsync.store import periods
from okrsync.store.database import Database
from okrsync.timefmt import from_text, to_text

_OVERRIDE = (
    "SELECT id, value, measured_at, progress, status, author, note, until FROM measurements "
    "{hint} WHERE kr_id = ? AND until IS NOT NULL AND {where} "
    "AND measured_at <= ? AND until > ? AND manual = 1 AND value IS NOT NULL "
    "ORDER BY measured_at DESC, id DESC LIMIT 1"
)


def decoded(row: dict[str, Any]) -> dict[str, Any]:
    """A measurements row as callers read it: JSON columns parsed; `manual`, `backfilled`
    and `superseded` bools."""
    row["inputs"] = json.loads(row["inputs"]) if row["inputs"] else None
    row["answer"] = json.loads(row["answer"]) if row.get("answer") else None
    row["slo"] = json.loads(row["slo"]) if row.get("slo") else None
    for flag in ("manual", "backfilled", "superseded"):
        row[flag] = bool(row[flag])
    return row


def holding(db: Database, kr_id: str, at: datetime, period: Period | None) -> dict[str, Any] | None:
    """The manual override (a check-in with `until`) of `kr_id` that holds at `at`: the
    latest one taken at or before `at` whose `until` is after it, unless a later check-in
    (at or before `at`) replaced it. None when no override holds."""
    where, params = periods.member(period) if period else ("1 = 1", [])
    stamp = to_text(at)
    row = db.execute(
        _OVERRIDE.format(where=where, hint=db.indexed_by("idx_measurements_overrides")),
        [kr_id, *params, stamp, stamp],
    ).fetchone()
    if row is None:
        return None
    later = db.execute(
        "SELECT 1 FROM measurements WHERE kr_id = ? AND manual = 1 AND value IS NOT NULL "
        "AND measured_at <= ? AND (measured_at > ? OR (measured_at = ? AND id > ?)) LIMIT 1",
        [kr_id, stamp, row[2], row[2], row[0]],
    ).fetchone()
    if later is not None:
        return None
    keys = ("id", "value", "measured_at", "progress", "status", "author", "note", "until")
    return dict(zip(keys, row, strict=True))


def overridden(db: Database, at: datetime) -> set[str]:
    """The KRs with an override taken at or before `at` whose `until` is after it (a
    superseded one included: the caller re-reads those KRs)."""
    stamp = to_text(at)
    rows = db.execute(
        "SELECT DISTINCT kr_id FROM measurements "
        f"{db.indexed_by('idx_measurements_overrides')} "
        "WHERE until IS NOT NULL AND until > ? AND measured_at <= ?",
        [stamp, stamp],
    ).fetchall()
    return {r[0] for r in rows}


def latest(
    db: Database,
    kr_id: str,
    at: datetime | None,
    *,
    automated: bool = False,
    valued: bool = False,
    period: Period | None = None,
) -> dict[str, Any] | None:
    """The latest measurement of `kr_id` (at or before `at`; of `period`, if given), with
    its run; `automated`: the latest one that is not a check-in; `valued`: with a value.
    A superseded row (re-measured by `backfill --replace`) is never the latest."""
    sql = (
        "SELECT m.*, r.kind AS run_kind, r.config_digest, r.config_commit "
        "FROM measurements AS m LEFT JOIN runs AS r ON r.id = m.run_id "
        "WHERE m.kr_id = ? AND m.superseded = 0"
    )
    params: list[Any] = [kr_id]
    if at is not None:
        sql += " AND m.measured_at <= ?"
        params.append(to_text(at))
    if automated:
        sql += " AND m.manual = 0"
    if valued:
        sql += " AND m.value IS NOT NULL"
    if period is not None:
        where, more = periods.member(period)
        sql += f" AND {where.replace('period', 'm.period').replace('measured_at', 'm.measured_at')}"
        params += more
    sql += " ORDER BY m.measured_at DESC, m.id DESC LIMIT 1"
    cursor = db.execute(sql, params)
    row = cursor.fetchone()
    if row is None:
        return None
    return decoded(dict(zip([d[0] for d in cursor.description], row, strict=True)))


def by_id(db: Database, measurement_id: int) -> dict[str, Any] | None:
    """One measurement with its run, by id."""
    cursor = db.execute(
        "SELECT m.*, r.kind AS run_kind, r.config_digest, r.config_commit "
        "FROM measurements AS m LEFT JOIN runs AS r ON r.id = m.run_id WHERE m.id = ?",
        [measurement_id],
    )
    row = cursor.fetchone()
    if row is None:
        return None
    return decoded(dict(zip([d[0] for d in cursor.description], row, strict=True)))


def observations(
    db: Database, kr_ids: list[str], now: datetime, period: Period
) -> dict[str, Observation]:
    """Latest value and latest attempt at or before `now` in `period`, per KR; while a
    manual override holds (a check-in with `until` after `now`), its value instead, and a
    value taken under an override since expired is marked `held_back`. Superseded rows
    (re-measured by `backfill --replace`) are neither the value nor the attempt.

    Two queries per CHUNK KRs (each KR's two LIMIT 1 index searches, then those rows), so
    a store across the network costs a few round trips, not several per KR."""
    at = to_text(now)
    overrides = ever_overridden(db)
    out: dict[str, Observation] = {}
    for start in range(0, len(kr_ids), CHUNK):
        chunk = kr_ids[start : start + CHUNK]
        latest = _latest_ids(db, chunk, period, at)
        rows = _rows(db, {i for pair in latest.values() for i in pair if i is not None})
        for kr_id, (value_id, attempt_id) in latest.items():
            if attempt_id is None:
                continue
            value = rows.get(value_id) if value_id is not None else None
            attempt = rows[attempt_id]
            held = holding(db, kr_id, now, period) if kr_id in overrides else None
            if held is not None:
                out[kr_id] = Observation(
                    value=held["value"],
                    measured_at=from_text(held["measured_at"]),
                    manual=True,
                    attempted_at=from_text(attempt["measured_at"]),
                    progress=held["progress"],
                    status=held["status"],
                    until=from_text(held["until"]),
                    author=held["author"],
                    note=held["note"],
                )
                continue
            out[kr_id] = _observed(db, kr_id, value, attempt, period, kr_id in overrides)
    return out


CHUNK = 500
_LATEST = (
    "(SELECT m.id FROM measurements AS m WHERE m.kr_id = k.column1 AND {where} "
    "AND m.measured_at <= ? AND m.superseded = 0{valued} "
    "ORDER BY m.measured_at DESC, m.id DESC LIMIT 1)"
)


def _latest_ids(
    db: Database, kr_ids: list[str], period: Period, at: str
) -> dict[str, tuple[int | None, int | None]]:
    """Per KR: the id of its latest measurement with a value, and of its latest attempt."""
    where, params = periods.member(period)
    where = where.replace("period", "m.period").replace("measured_at", "m.measured_at")
    value = _LATEST.format(where=where, valued=" AND m.value IS NOT NULL")
    attempt = _LATEST.format(where=where, valued="")
    keys = ", ".join("(?)" for _ in kr_ids)
    rows = db.execute(
        f"SELECT k.column1, {value}, {attempt} FROM (VALUES {keys}) AS k",
        [*params, at, *params, at, *kr_ids],
    ).fetchall()
    return {str(r[0]): (r[1], r[2]) for r in rows}


def _rows(db: Database, ids: set[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    marks = ", ".join("?" for _ in ids)
    return {
        int(r["id"]): r
        for r in db.query(
            "SELECT id, value, measured_at, manual, progress, status, backfilled, slo, error "
            f"FROM measurements WHERE id IN ({marks})",
            sorted(ids),
        )
    }


def _observed(
    db: Database,
    kr_id: str,
    value: dict[str, Any] | None,
    attempt: dict[str, Any],
    period: Period,
    overrides: bool,
) -> Observation:
    """The observation of a KR no override holds now; `overrides`: it has had some."""
    if value is None:
        return Observation(attempted_at=from_text(attempt["measured_at"]), error=attempt["error"])
    taken = from_text(value["measured_at"])
    return Observation(
        held_back=overrides
        and not value["manual"]
        and holding(db, kr_id, taken, period) is not None,
        value=value["value"],
        measured_at=taken,
        manual=bool(value["manual"]),
        attempted_at=from_text(attempt["measured_at"]),
        error=attempt["error"],
        progress=value["progress"],
        status=value["status"],
        backfilled=bool(value["backfilled"]),
        slo=SloReading.from_json(json.loads(value["slo"])) if value["slo"] else None,
    )


def ever_overridden(db: Database) -> set[str]:
    """The KRs with any override (a check-in with `until`) in the store: the only ones
    `holding` can find something for (read from the small partial index)."""
    rows = db.execute(
        "SELECT DISTINCT kr_id FROM measurements "
        f"{db.indexed_by('idx_measurements_overrides')} WHERE until IS NOT NULL"
    ).fetchall()
    return {r[0] for r in rows}
