"""Pure scheduling: when each KR is next due, and which due KRs run together.

No clock and no sleeping here: every time is passed in (epoch seconds), so tests never wait.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from okrsync.config import cron
from okrsync.config.loader import Config
from okrsync.config.model import KeyResult

Lane = frozenset[str]
JITTER = 0.1  # spread first runs over this fraction of the interval...
MAX_JITTER = 60.0  # ...but never more than this many seconds
CRON_SPAN = 60.0  # cron fires at minute resolution: spread within the first few seconds


@dataclass(frozen=True)
class Timing:
    """How often one KR runs: every `interval` seconds, or at each firing of `cron`."""

    interval: float
    cron: cron.Cron | None = None
    zone: str = "UTC"
    phase: str = ""  # jitter key: KRs asking the same query share it, so they fall due together


def timing(config: Config, kr: KeyResult) -> Timing:
    """The KR's timing: its `cron` if set, else its `every` (or the defaults')."""
    measures = sorted(kr.inputs.items()) if kr.formula else [("", kr)]
    asked: list[Any] = [[m.source, m.query_fields()] for _, m in measures]
    if kr.slo is not None:
        asked.append(kr.slo.model_dump(mode="json"))
    phase = json.dumps(asked, sort_keys=True)
    if kr.cron:
        zone = config.period.timezone
        return Timing(config.every_seconds(kr), cron.parse(kr.cron), zone, phase)
    return Timing(config.every_seconds(kr), phase=phase)


def lane(kr: KeyResult) -> Lane:
    """The sources a KR needs; KRs of one lane are measured together, one batch at a time."""
    if kr.formula:
        return frozenset(m.source for m in kr.inputs.values() if m.source)
    return frozenset([kr.source or ""])


def spread(kr_id: str) -> float:
    """A stable fraction in [0, 1) per KR id: its offset within the jitter window."""
    return int.from_bytes(hashlib.sha256(kr_id.encode()).digest()[:8], "big") / 2.0**64


class Schedule:
    """The due time of every KR; a popped KR is running until `done` reschedules it."""

    def __init__(self, jitter: float = JITTER, max_jitter: float = MAX_JITTER) -> None:
        self.jitter = jitter
        self.max_jitter = max_jitter
        self.timings: dict[str, Timing] = {}
        self.due: dict[str, float] = {}
        self.running: dict[str, float] = {}

    def offset(self, kr_id: str, t: Timing) -> float:
        """Seconds after its due time a KR starts: stable, and shared by identical queries."""
        span = CRON_SPAN if t.cron else t.interval
        return spread(t.phase or kr_id) * min(self.max_jitter, self.jitter * span)

    def first_due(self, kr_id: str, t: Timing, last: float | None, now: float) -> float:
        """Due time from the last attempt in the store: never a second run inside an interval."""
        if last is None:
            return now + self.offset(kr_id, t)
        if t.cron:
            fire = _fire_after(t, last)
            return fire + self.offset(kr_id, t) if fire > now else now + self.offset(kr_id, t)
        due = last + t.interval
        return due if due > now else now + self.offset(kr_id, t)

    def plan(
        self,
        timings: Mapping[str, Timing],
        last: Mapping[str, float | None],
        now: float,
        *,
        afresh: bool = False,
    ) -> None:
        """Adopt a (re)loaded config: add new KRs, drop removed ones, re-time changed ones
        (`afresh`: every KR, as when a new period begins)."""
        if afresh:
            self.timings = {}
        for kr_id in list(self.due):
            if kr_id not in timings:
                del self.due[kr_id]
        for kr_id, t in timings.items():
            if self.timings.get(kr_id) != t and kr_id not in self.running:
                self.due[kr_id] = self.first_due(kr_id, t, last.get(kr_id), now)
        self.timings = dict(timings)

    def pop_due(self, now: float) -> list[str]:
        """KRs due at `now`, earliest first; they count as running until `done`."""
        ready = sorted((d, k) for k, d in self.due.items() if d <= now)
        for due, kr_id in ready:
            del self.due[kr_id]
            self.running[kr_id] = due
        return [k for _, k in ready]

    def done(self, kr_ids: Iterable[str], now: float) -> None:
        """Reschedule finished KRs one interval after their due time (no drift, no bursts)."""
        for kr_id in kr_ids:
            was = self.running.pop(kr_id, None)
            t = self.timings.get(kr_id)
            if t is None or was is None:
                continue  # removed by a reload while it ran
            if t.cron:
                self.due[kr_id] = _fire_after(t, max(was, now)) + self.offset(kr_id, t)
                continue
            due = was + t.interval
            if due <= now:  # overran its interval: skip the missed runs, keep the phase
                due += math.ceil((now - due) / t.interval + 1e-9) * t.interval
            self.due[kr_id] = due

    def next_due(self) -> float | None:
        return min(self.due.values(), default=None)


def _fire_after(t: Timing, moment: float) -> float:
    assert t.cron is not None
    return t.cron.next_after(datetime.fromtimestamp(moment, UTC), t.zone).timestamp()


class Lanes:
    """At most one batch in flight per lane, so a slow source never holds more than its own."""

    def __init__(self) -> None:
        self.busy: set[Lane] = set()
        self.waiting: dict[Lane, list[str]] = {}

    def add(
        self, kr_ids: Iterable[str], lane_of: Mapping[str, Lane]
    ) -> list[tuple[Lane, list[str]]]:
        """Group due KRs by lane; returns the batches that may start now, the rest wait."""
        groups: dict[Lane, list[str]] = {}
        for kr_id in kr_ids:
            groups.setdefault(lane_of.get(kr_id, frozenset()), []).append(kr_id)
        ready = []
        for key, ids in groups.items():
            if key in self.busy:
                self.waiting.setdefault(key, []).extend(ids)
            else:
                self.busy.add(key)
                ready.append((key, ids))
        return ready

    def finish(self, key: Lane) -> list[str] | None:
        """The lane's batch ended: the KRs that waited for it form its next batch, if any."""
        ids = self.waiting.pop(key, None)
        if not ids:
            self.busy.discard(key)
            return None
        return ids

    def idle(self) -> bool:
        return not self.busy
