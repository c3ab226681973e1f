"""A measurement as a row of the `measurements` table (the one INSERT every write uses)."""

from __future__ import annotations

import json
from typing import Any

from okrsync.measure.measurement import Measurement
from okrsync.timefmt import to_text

INSERT = (
    "INSERT INTO measurements (kr_id, period, run_id, measured_at, value, progress, "
    "status, source, query, inputs, error, manual, note, answer, fetched_at, "
    "duration_s, author, until, backfilled, slo) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def row(run_id: str | None, r: Measurement, period: str) -> list[Any]:
    """A measurement as the parameters of `INSERT`."""
    return [
        r.kr_id,
        period,
        run_id,
        to_text(r.measured_at),
        r.value,
        r.progress,
        r.status,
        r.source,
        r.query,
        json.dumps(r.inputs) if r.inputs is not None else None,
        r.error,
        int(r.manual),
        r.note,
        json.dumps(r.answer) if r.answer is not None else None,
        to_text(r.fetched_at) if r.fetched_at else None,
        r.duration_s,
        r.author,
        to_text(r.until) if r.until else None,
        int(r.backfilled),
        json.dumps(r.slo.as_json()) if r.slo is not None else None,
    ]
