"""Backfill in the daemon: a KR with `backfill: true` that the daemon sees for the first
time, at start or on a reload, is measured once a day over the period so far (as
`okrsync backfill --step 1d` does).

"First time": the store holds no backfilled value of the KR in the running period, and
this process has not backfilled it (nor found it skipped) yet, so a restart spends no
quota again. One background thread, asked for by a config's first tick and started only
once that tick's batches are done, so the first live values come first. It fetches through
the running config's Measurer (the same per-source semaphores as the live batches) and
writes through its own store connection (SQLite serialises the two writers; each KR is
one short transaction, as with `okrsync backfill` next to a running daemon).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, wait
from datetime import datetime
from pathlib import Path

import structlog

from okrsync.config.loader import Config
from okrsync.config.model import KeyResult
from okrsync.errors import UsageError
from okrsync.measure.backfill_plan import Span
from okrsync.progress.periods import contains
from okrsync.service.active import Active
from okrsync.service.backfill import Backfill, execute, prepare, span_of
from okrsync.service.metrics import Metrics
from okrsync.store.backfilled import backfilled_krs
from okrsync.store.store import Store

log = structlog.get_logger("okrsync.service.backfill")
STEP = 86400.0
"""One value a day, at 00:00 UTC."""


class Backfiller:
    """Runs the daemon's backfills one at a time in one thread; a newer config's request
    stops the running one between KRs (the KRs stored stay) and takes its place."""

    def __init__(
        self, db: str | Path, metrics: Metrics, lock: threading.Lock, now: Callable[[], datetime]
    ) -> None:
        """`lock`: the daemon's, guarding `Active.users` (a backfill holds its config's
        Measurer open); `now`: the daemon's clock."""
        self.db = db
        self.metrics = metrics
        self.lock = lock
        self.now = now
        self.cancel = threading.Event()
        """Set to stop the running backfill: on shutdown, or when a newer config asks."""
        self.thread: threading.Thread | None = None
        self.seen: dict[str, set[str]] = {}
        """Per period name, the KRs this process backfilled or found backfilled."""
        self._logged: set[tuple[str, str]] = set()  # (KR, reason) of skips logged
        self._kicked: Active | None = None
        self._wanted: tuple[Active, set[Future[None]]] | None = None
        self._stopped = False
        self._fetching = False  # within `execute`: fetch threads may be in flight
        self._abandoned = False
        self._guard = threading.Lock()  # _wanted, _stopped, thread

    def kick(self, active: Active, batches: set[Future[None]]) -> None:
        """After a tick of `active`: on its first, backfill its new KRs once `batches` (the
        daemon's in-flight ones, that tick's included) are done. Cheap on later ticks."""
        if active is self._kicked:
            return
        self._kicked, batches = active, set(batches)  # a copy: the daemon's set changes
        with self._guard:
            if self._stopped:
                return
            self.cancel.set()  # a backfill of an older config stops between KRs
            if self._wanted is not None:
                self._drop(self._wanted[0])
                self._wanted = None
            if not any(active.config.backfills(kr) for kr in active.krs.values()):
                return
            with self.lock:
                active.users += 1
            self._wanted = (active, batches)
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="backfill", daemon=True)
                self.thread.start()

    def stop(self) -> None:
        """Stop the running backfill between KRs and start no other (fetches not sent
        yet are dropped). Safe to call more than once; does not wait (see `join`)."""
        with self._guard:
            self._stopped = True
            self._abandoned = self._fetching
            self.cancel.set()
            if self._wanted is not None:
                self._drop(self._wanted[0])
                self._wanted = None

    def join(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the thread to end (after `stop`); False when it
        did not, or when `stop` came mid-fetch: a request already sent still runs in its
        thread, which must not hold up the exit (the daemon's abandoned fetches)."""
        thread = self.thread
        if thread is not None:
            thread.join(max(0.0, timeout))
            if thread.is_alive():
                return False
        with self._guard:
            return not self._abandoned

    def _drop(self, active: Active) -> None:
        with self.lock:
            active.release(1)

    def _loop(self) -> None:
        while True:
            with self._guard:
                if self._wanted is None or self._stopped:
                    self.thread = None
                    return
                (active, batches), self._wanted = self._wanted, None
                self.cancel.clear()
            try:
                while wait(batches, timeout=0.1).not_done and not self.cancel.is_set():
                    pass
                if not self.cancel.is_set():
                    self._run(active)
            except Exception as exc:  # a backfill never ends the daemon nor marks a KR
                log.warning("backfill_failed", error=f"{type(exc).__name__}: {exc}")
                log.debug("backfill_failed_traceback", exc_info=exc)
            finally:
                self._drop(active)

    def _run(self, active: Active) -> None:
        config, now = active.config, self.now()
        if not contains(config.period, now):
            return  # the daemon measures nothing then either
        seen = self.seen.setdefault(config.period.name, set())
        krs = [k for k in active.krs.values() if config.backfills(k) and k.id not in seen]
        if not krs:
            return
        store = Store(self.db)
        try:
            seen |= backfilled_krs(store, [k.id for k in krs], config.period.starts_at)
            span = span_of(config, None, None, STEP, now)
            krs = [k for k in krs if k.id not in seen and self._can(config, k, span)]
            if not krs:
                return
            bf = prepare(config, store, krs, span, explicit=False, measurer=active.measurer)
            self._skipped(bf)
            self._execute(active, store, bf, now, seen)
        finally:
            store.close()

    def _can(self, config: Config, kr: KeyResult, span: Span) -> bool:
        """Whether the KR can be planned at this step (one that cannot fails alone)."""
        try:
            prepare(config, None, [kr], span, explicit=False)
        except UsageError as exc:
            self._skip(kr.id, str(exc))
            return False
        return True

    def _skipped(self, bf: Backfill) -> None:
        for report in bf.reports:
            if report.skipped_reason is not None:
                self._skip(report.id, report.skipped_reason)

    def _skip(self, kr_id: str, reason: str) -> None:
        """Log a KR that cannot be backfilled, with why, once (a reload that fixes its
        query makes it a candidate again: it has no backfilled value yet)."""
        if (kr_id, reason) not in self._logged:
            self._logged.add((kr_id, reason))
            log.info("backfill_skipped", kr=kr_id, reason=reason)

    def _execute(
        self, active: Active, store: Store, bf: Backfill, now: datetime, seen: set[str]
    ) -> None:
        for job in bf.jobs:
            self.metrics.backfill_points.labels(kr=job.kr.id)
        log.info(
            "backfill_started",
            krs=len(bf.jobs),
            points=bf.points,
            requests=len(bf.requests),
            start=f"{bf.span.start:%Y-%m-%d}",
        )
        run_id = None
        with self._guard:
            self._fetching = True
        try:
            run_id = execute(
                active.config,
                store,
                bf,
                active.measurer,
                now,
                stop=self.cancel,
                commit=active.commit,
            )
        finally:
            with self._guard:
                self._fetching = False
            done = [r for r in bf.reports if r.done and r.skipped_reason is None]
            for report in done:
                seen.add(report.id)
                self.metrics.backfill_points.labels(kr=report.id).inc(report.written)
            log.info(
                "backfill_finished",
                run_id=run_id,
                krs=len(done),
                written=sum(r.written for r in done),
                failed=sum(len(r.failed) for r in done),
                stopped=self.cancel.is_set(),
            )
