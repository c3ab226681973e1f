"""Which measurements are pushed where, and the JSON each delivery carries.

Called inside the measurement's transaction (`store.transaction()`), right after the
measurements are appended: the deliveries commit with them or not at all.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from okrsync.config.loader import Config
from okrsync.config.sinks import push_targets
from okrsync.measure.measurement import Measurement
from okrsync.progress.definitions import Definitions
from okrsync.progress.tree import evaluate
from okrsync.secrets import redact
from okrsync.store.outbox import Previous
from okrsync.store.sqlite import Store
from okrsync.timefmt import to_text


def changed(m: Measurement, before: Previous | None) -> bool:
    """Whether value, progress or status differ from the KR's previous measurement."""
    if before is None:
        return True
    return (m.value, m.progress, m.status) != (before.value, before.progress, before.status)


def enqueue(
    store: Store,
    config: Config,
    defs: Definitions,
    rows: list[Measurement],
    ids: list[int],
    now: datetime,
) -> int:
    """Add a pending delivery per sink for each measurement worth pushing; how many.

    Error rows carry no value and are not pushed; unchanged values only with
    `push_unchanged` (on the KR, else in `defaults`)."""
    period = defs.period.name
    outbox = store.outbox
    wanted: list[tuple[Measurement, int, list[Any]]] = []
    for m, measurement_id in zip(rows, ids, strict=True):
        found = config.find_kr(m.kr_id)
        if found is None or not found[1].push or m.value is None:
            continue
        kr = found[1]
        unchanged = kr.push_unchanged
        if unchanged is None:
            unchanged = config.defaults.push_unchanged
        if unchanged or changed(m, outbox.previous(m.kr_id, period, measurement_id)):
            wanted.append((m, measurement_id, push_targets(kr.push)))
    if not wanted:
        return 0
    tree = evaluate(
        defs, store.observations([k.id for k in defs.key_results()], now, defs.period), now
    )
    rolled = {view.objective.id: view.progress for view in tree.walk()}
    out: list[dict[str, Any]] = []
    for m, measurement_id, targets in wanted:
        kr_def = defs.kr(m.kr_id)
        objective = kr_def.objective_id if kr_def else None
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
            "measured_at": to_text(m.measured_at),
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
                    "idempotency_key": uuid.uuid4().hex,
                    "payload": redact(
                        json.dumps({**body, "external_id": target.id, **target.mirror()})
                    ),
                }
            )
    latest = {name for name, sink in config.sinks.items() if sink.latest_only}
    outbox.enqueue(out, now, supersede=latest)
    return len(out)
