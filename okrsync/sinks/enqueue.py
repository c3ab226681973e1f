"""Which measurements are pushed where, and the JSON each delivery carries.

Called inside the measurement's transaction (`store.transaction()`), right after the
measurements are appended: the deliveries commit with them or not at all.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from okrsync.config.loader import Config
from okrsync.config.sinks import PushTarget, push_targets
from okrsync.measure.measurement import Measurement
from okrsync.progress.definitions import Definitions
from okrsync.progress.maths import Observation
from okrsync.progress.tree import rolled_progress
from okrsync.secrets import redact
from okrsync.store.sqlite import Store
from okrsync.timefmt import to_text


def changed(m: Measurement, before: Observation | None) -> bool:
    """Whether value, progress or status differ from the KR's previous measurement."""
    if before is None or before.value is None:
        return True
    return (m.value, m.progress, m.status) != (before.value, before.progress, before.status)


def enqueue(
    store: Store,
    config: Config,
    defs: Definitions,
    rows: list[Measurement],
    ids: list[int],
    now: datetime,
    known: Mapping[str, Observation],
) -> int:
    """Add a pending delivery per sink for each measurement worth pushing; how many.

    `known` is what the caller knew of the period's KRs before `rows`: "changed" and the
    objectives' rolled-up progress come from it and `rows`, not from reading the store
    again inside the transaction. Error rows carry no value and are not pushed;
    unchanged values only with `push_unchanged` (on the KR, else in `defaults`)."""
    period = defs.period.name
    wanted: list[tuple[Measurement, int, list[PushTarget]]] = []
    for m, measurement_id in zip(rows, ids, strict=True):
        found = config.find_kr(m.kr_id)
        if found is None or not found[1].push or m.value is None:
            continue
        kr = found[1]
        unchanged = kr.push_unchanged
        if unchanged is None:
            unchanged = config.defaults.push_unchanged
        if unchanged or changed(m, known.get(m.kr_id)):
            wanted.append((m, measurement_id, push_targets(kr.push)))
    if not wanted:
        return 0
    values = {kr_id: obs.value for kr_id, obs in known.items()}
    values.update((m.kr_id, m.value) for m in rows if m.value is not None)
    rolled = rolled_progress(defs, values)
    stamps: dict[datetime, str] = {}
    keys = iter(_keys(sum(len(targets) for _, _, targets in wanted)))
    out: list[dict[str, Any]] = []
    for m, measurement_id, targets in wanted:
        kr_def = defs.kr(m.kr_id)
        objective = kr_def.objective_id if kr_def else None
        if m.measured_at not in stamps:
            stamps[m.measured_at] = to_text(m.measured_at)
        body = {
            "kr_id": m.kr_id,
            "objective_id": objective,
            "period": period,
            "value": m.value,
            "start": kr_def.start if kr_def else None,
            "target": kr_def.target if kr_def else None,
            "unit": kr_def.unit if kr_def else None,
            "progress": m.progress,
            "status": m.status,
            "measured_at": stamps[m.measured_at],
            "source": m.source,
            "query": m.query,
            "manual": m.manual,
            "note": m.note,
            "measurement_id": measurement_id,
            "objective_progress": rolled.get(objective) if objective else None,
        }
        for target in targets:
            out.append(
                {
                    "measurement_id": measurement_id,
                    "kr_id": m.kr_id,
                    "sink": target.sink,
                    "idempotency_key": next(keys),
                    "payload": redact(
                        json.dumps({**body, "external_id": target.id, **target.mirror()})
                    ),
                }
            )
    latest = {name for name, sink in config.sinks.items() if sink.latest_only}
    store.outbox.enqueue(out, now, supersede=latest)
    return len(out)


def _keys(count: int) -> list[str]:
    """`count` random idempotency keys (128 bits each, as a uuid4 has), drawn at once."""
    raw = os.urandom(16 * count).hex()
    return [raw[i : i + 32] for i in range(0, 32 * count, 32)]
