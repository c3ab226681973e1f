"""Which measurements are pushed where, and the JSON each delivery carries.

Two steps, so the measurement's transaction holds only the writes: `prepare` builds the
deliveries before it (pure: no store), `enqueue` adds them inside it, right after the
measurements are appended, so they commit with them or not at all.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from okrsync.config.loader import Config
from okrsync.config.sinks import Push, PushTarget, push_targets
from okrsync.measure.measurement import Measurement
from okrsync.progress.definitions import Definitions
from okrsync.progress.maths import Observation
from okrsync.progress.tree import rolled_progress
from okrsync.secrets import redact
from okrsync.store.store import Store
from okrsync.timefmt import to_text


def changed(m: Measurement, before: Observation | None) -> bool:
    """Whether value, progress or status differ from the KR's previous measurement; after
    an override expired, the first automated value always counts (sinks showed the
    override, and were not sent the values taken under it)."""
    if before is None or before.value is None or before.held_back:
        return True
    if before.until is not None and not before.holds(m.measured_at):
        return True
    return (m.value, m.progress, m.status) != (before.value, before.progress, before.status)


@dataclass(frozen=True)
class Outgoing:
    """The deliveries of one batch of measurements, waiting for the measurements' ids.

    Each is (position of its measurement in the batch, KR id, sink, idempotency key,
    payload JSON without the measurement id, which only the store assigns)."""

    deliveries: list[tuple[int, str, str, str, str]] = field(default_factory=list)
    latest_only: frozenset[str] = frozenset()

    def rows(self, ids: list[int]) -> list[dict[str, Any]]:
        """The outbox rows, now that the measurements have their ids."""
        return [
            {
                "measurement_id": ids[at],
                "kr_id": kr_id,
                "sink": sink,
                "idempotency_key": key,
                "payload": f'{{"measurement_id":{ids[at]},{payload[1:]}',
            }
            for at, kr_id, sink, key, payload in self.deliveries
        ]


def prepare(
    config: Config,
    defs: Definitions,
    rows: list[Measurement],
    known: Mapping[str, Observation],
) -> Outgoing:
    """The deliveries worth sending for `rows` (call before the transaction).

    `known` is what the caller knew of the period's KRs before `rows`: "changed" and the
    objectives' rolled-up progress come from it and `rows`, never from the store. Error
    rows carry no value and are not pushed; unchanged values only with `push_unchanged`
    (on the KR, else in `defaults`). A value filed under an earlier period (`checkin
    --period`) goes only to sinks that keep history: one that keeps the latest value
    shows the current period's."""
    latest = frozenset(name for name, sink in config.sinks.items() if sink.latest_only)
    current = defs.period.name == config.period.name
    wanted: list[tuple[int, Measurement, tuple[PushTarget, ...]]] = []
    for at, m in enumerate(rows):
        found = config.find_kr(m.kr_id)
        if found is None or not found[1].push or m.value is None:
            continue
        if _held(known.get(m.kr_id), m):  # sinks keep showing the override meanwhile
            continue
        kr = found[1]
        unchanged = kr.push_unchanged
        if unchanged is None:
            unchanged = config.defaults.push_unchanged
        targets = tuple(t for t in _targets(tuple(kr.push)) if current or t.sink not in latest)
        if targets and (unchanged or changed(m, known.get(m.kr_id))):
            wanted.append((at, m, targets))
    if not wanted:
        return Outgoing()
    values = {kr_id: obs.value for kr_id, obs in known.items()}
    values.update(
        (m.kr_id, m.value) for m in rows if m.value is not None and not _held(known.get(m.kr_id), m)
    )
    rolled = rolled_progress(defs, values)
    stamps: dict[datetime, str] = {}
    keys = iter(_keys(sum(len(targets) for _, _, targets in wanted)))
    out: list[tuple[int, str, str, str, str]] = []
    for at, m, targets in wanted:
        kr_def = defs.kr(m.kr_id)
        objective = kr_def.objective_id if kr_def else None
        if m.measured_at not in stamps:
            stamps[m.measured_at] = to_text(m.measured_at)
        body = {
            "kr_id": m.kr_id,
            "objective_id": objective,
            "period": defs.period.name,
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
            "objective_progress": rolled.get(objective) if objective else None,
        }
        for target in targets:
            fields = {**body, "external_id": target.id, **target.mirror()}
            payload = redact(json.dumps(fields, separators=(",", ":")))
            out.append((at, m.kr_id, target.sink, next(keys), payload))
    return Outgoing(out, latest)


def _held(obs: Observation | None, m: Measurement) -> bool:
    """Whether an override holding when `m` was taken keeps the KR's value (`m` is an
    automated row recorded under it; a new check-in always counts)."""
    return obs is not None and not m.manual and obs.holds(m.measured_at)


def enqueue(store: Store, outgoing: Outgoing, ids: list[int], now: datetime) -> int:
    """Add the prepared deliveries as pending (inside the measurements' transaction,
    `ids` being theirs, in batch order); how many."""
    if outgoing.deliveries:
        store.outbox.enqueue(outgoing.rows(ids), now, supersede=outgoing.latest_only)
    return len(outgoing.deliveries)


@lru_cache(maxsize=4096)
def _targets(push: tuple[Push, ...]) -> tuple[PushTarget, ...]:
    return tuple(push_targets(list(push)))


def _keys(count: int) -> list[str]:
    """`count` random idempotency keys (128 bits each, as a uuid4 has), drawn at once."""
    raw = os.urandom(16 * count).hex()
    return [raw[i : i + 32] for i in range(0, 32 * count, 32)]
