"""The daemon as one of several replicas on one store: while another leads it follows the
store (for /metrics and /report); on taking the lease it schedules from the store."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from okrsync.progress.maths import Observation
from okrsync.service.active import Active
from okrsync.service.metrics import Metrics
from okrsync.service.scheduler import Schedule, timing
from okrsync.service.waker import Waker
from okrsync.store.store import Store


class Replica:
    """Mixed into the Daemon, whose state it reads and updates under the daemon's locks."""

    lock: threading.Lock
    store_lock: threading.Lock
    store: Store
    active: Active | None
    obs: dict[str, Observation]
    schedule: Schedule
    metrics: Metrics
    wake: Waker
    closing: bool
    replan_wanted: bool
    clock: Callable[[], float]

    def now(self) -> datetime:
        raise NotImplementedError

    def _led(self, leading: bool) -> None:
        """From the lease thread: this replica took or lost the lease."""
        self.metrics.leader.set(1 if leading else 0)
        self.replan_wanted = leading
        self.wake.set()

    def _follow(self) -> None:
        """From the lease thread, while another replica leads: the store's values, for
        /metrics and /report, and the attempts a takeover schedules from."""
        with self.lock:
            active = self.active
        if active is None:
            return
        ids = [kr.id for _, kr in active.config.key_results()]
        with self.store_lock:
            if self.closing:
                return
            fresh = self.store.observations(ids, self.now(), active.config.period)
        with self.lock:
            self.obs.update(fresh)

    def _replan(self) -> None:
        """On taking the lease: time every KR from its last attempt in the store, so none
        is measured twice for one due time nor left waiting."""
        self._follow()
        with self.lock:
            if self.active is None:
                return
            config, krs = self.active.config, self.active.krs
            last = {k: self.obs.get(k, Observation()).attempted_at for k in krs}
            timings = {k: timing(config, kr) for k, kr in krs.items()}
            stamps = {k: t.timestamp() if t else None for k, t in last.items()}
            self.schedule.plan(timings, stamps, self.clock(), afresh=True)
