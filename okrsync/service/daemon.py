"""`okrsync run`: measure every KR on its schedule until SIGTERM, reloading config on change.

Data flow: schedule (pure) -> lanes (one batch per source set) -> worker pool -> Measurer
(dedup, per-source limits, retries) -> assess -> store (one transaction per batch).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from okrsync.config import loader as config_module
from okrsync.config import plugins
from okrsync.config.loader import Config
from okrsync.config.model import KeyResult
from okrsync.connector import Connector
from okrsync.errors import ConfigError, StoreError
from okrsync.measure.measurement import Measurement
from okrsync.measure.measurer import Measurer, failure
from okrsync.progress.definitions import from_config
from okrsync.progress.maths import Observation, observe_held
from okrsync.progress.periods import resolve
from okrsync.progress.status import assess_all
from okrsync.review.gitinfo import config_commit
from okrsync.service.active import Active
from okrsync.service.background_backfill import Backfiller
from okrsync.service.health import HealthState
from okrsync.service.leadership import Leadership, NotLeader
from okrsync.service.metrics import Metrics, View
from okrsync.service.options import Options
from okrsync.service.replica import Replica
from okrsync.service.scheduler import Lane, Lanes, Schedule, lane, timing
from okrsync.service.store_open import open_store
from okrsync.service.waker import Waker
from okrsync.sinks.delivery import Courier
from okrsync.sinks.enqueue import enqueue, prepare
from okrsync.store.store import Store

log = structlog.get_logger("okrsync.service.daemon")
MAX_SLEEP = 30.0
DELIVERY_EVERY = 30.0  # pending deliveries (check-ins, retries, a crash's) go out this often


def _factory(name: str, config: Config) -> Connector:
    return plugins.create(name, config.sources[name])


@dataclass
class Daemon(Replica):
    """The long-lived service; `run()` returns True when in-flight fetches were abandoned."""

    opts: Options
    clock: Callable[[], float] = time.time
    factory: Callable[[str, Config], Connector] = _factory
    schedule: Schedule = field(default_factory=Schedule)
    health: HealthState = field(default_factory=HealthState)
    store: Store = field(init=False)

    def __post_init__(self) -> None:
        self.metrics = Metrics(self.view)
        self.lanes = Lanes()
        self.lock = threading.Lock()  # schedule, lanes, observations, active
        self.store_lock = threading.Lock()  # one sqlite connection: one user at a time
        self.backfiller = Backfiller(self.opts.db, self.metrics, self.lock, self.now)
        self.wake = Waker()
        self.stopping = False
        self.signals: list[str] = []  # appended by signal handlers, logged by the loop
        self.reload_wanted = False
        self.replan_wanted = False  # leadership was just taken: schedule from the store
        self.closing = False
        self.obs: dict[str, Observation] = {}
        self.active: Active | None = None
        self.pool = ThreadPoolExecutor(max_workers=self.opts.workers, thread_name_prefix="batch")
        self.futures: set[Future[None]] = set()
        self.delivered_at = float("-inf")

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # -- start-up and reload ------------------------------------------------------------

    def start(self) -> bool:
        """Load the config (ConfigError if invalid), open the store (waiting while it is
        unreachable), schedule from history; False if a signal stopped that wait."""
        config = self._load()
        store = open_store(self.opts.db, lambda: self.stopping, self.wake.wait, self.health.down)
        if store is None:
            return False
        self.store = store
        lease_clock = lambda: store.db.clock(self.clock())  # noqa: E731
        self.leadership = Leadership(
            store, self.store_lock, self.opts.lease, lease_clock, self._led, self._follow
        )
        sinks = lambda: self.active.config.sinks if self.active else {}  # noqa: E731
        self.courier = Courier(store, sinks, self.store_lock, claimer=self.leadership.claimer)
        self._apply(config)
        self.leadership.start()
        return True

    def _load(self) -> Config:
        return config_module.load(self.opts.config)

    def reload(self) -> bool:
        """Validate the config on disk; apply it if valid, else keep the running one."""
        try:
            config = self._load()
        except OSError as exc:  # e.g. a file made unreadable mid-edit
            return self._reject([f"{exc.filename or self.opts.config}: {exc.strerror or exc}"])
        except ConfigError as exc:
            return self._reject([str(p) for p in exc.problems])
        except Exception as exc:  # a loader bug is still a rejected config, never a crash
            log.exception("config_load_bug")
            return self._reject([f"{self.opts.config}: cannot load: {type(exc).__name__}: {exc}"])
        if self.active and config.digest == self.active.config.digest:
            self.health.loaded(config.digest, self.clock())
            self.metrics.reloaded(config.digest, ok=True, at=self.clock())
            log.info("config_unchanged", hash=config.digest)
            return True
        try:
            self._apply(config)
        except StoreError as exc:  # the config is fine; the store could not take it yet
            self.health.store_ok = False
            return self._reject([f"store: {exc}"])
        return True

    def _reject(self, problems: list[str]) -> bool:
        """Log every problem (file:line) and report them; the running config stays."""
        for problem in problems:
            log.error("config_problem", problem=problem)
        log.error("config_rejected", problems=len(problems), keeping=self.health.digest)
        self.health.rejected(problems, self.clock())
        self.metrics.reloaded(self.health.digest, ok=False)
        return False

    def _apply(self, config: Config) -> None:
        now = self.now()
        ids = [kr.id for _, kr in config.key_results()]
        same = self.active is not None and self.active.config.period == config.period
        kept = self.obs if same else {}  # a new period starts with no data
        with self.store_lock:
            self.store.sync_config(config, now)
            fresh = self.store.observations([i for i in ids if i not in kept], now, config.period)
            defs = resolve(from_config(config), self.store, now)
        measurer = Measurer(config, self.metrics.instrument(self.factory), workers=16)
        krs = {kr.id: kr for _, kr in config.key_results() if not kr.is_manual}
        lanes = {k: lane(kr) for k, kr in krs.items()}
        active = Active(config, defs, measurer, krs, lanes, commit=config_commit(self.opts.config))
        timings = {k: timing(config, kr) for k, kr in krs.items()}
        with self.lock:
            old, self.active = self.active, active
            self.obs = {i: kept[i] for i in ids if i in kept} | fresh
            seen = {k: self.obs.get(k, Observation()).attempted_at for k in krs}
            last = {k: t.timestamp() if t else None for k, t in seen.items()}
            self.schedule.plan(timings, last, self.clock(), afresh=not same)
            if old:
                old.retired = True
                old.release(0)
        for source in config.sources:
            self.metrics.touch_source(source)
        self.health.loaded(config.digest, self.clock())
        self.health.store_ok = True
        self.health.period = config.period.name
        self.health.period_ended = now >= config.period.ends_at
        self.metrics.reloaded(config.digest, ok=True, at=self.clock())
        log.info(
            "config_loaded",
            period=config.period.name,
            hash=config.digest,
            key_results=len(ids),
            scheduled=len(krs),
            retired=sorted(set(old.krs) - set(krs)) if old else [],
        )

    # -- the loop -----------------------------------------------------------------------

    def request_stop(self, *_: Any) -> None:
        """Ask the loop to stop; safe in a signal handler (no locks, no logging)."""
        self.stopping = True
        self.wake.set()

    def request_reload(self, *_: Any) -> None:
        """Ask the loop to reload the config; safe in a signal handler too."""
        self.reload_wanted = True
        self.wake.set()

    def run(self) -> bool:
        """Dispatch due KRs until asked to stop; then wait up to the grace period."""
        while True:
            self._log_signals()
            if self.stopping:
                break
            if self.reload_wanted:
                self.reload_wanted = False
                try:
                    self.reload()
                except Exception:  # a bug in reloading must not end the service
                    log.exception("reload_failed", keeping=self.health.digest)
            if self.replan_wanted:
                self.replan_wanted = False
                self._replan()
            idle = self.tick()
            with self.lock:
                upcoming = None if idle else self.schedule.next_due()
            delay = MAX_SLEEP if upcoming is None else upcoming - self.clock()
            if delay > 0:
                self.wake.wait(min(delay, MAX_SLEEP))
            self.wake.clear()
        return self.shutdown()

    def _deliver_pending(self) -> None:
        """Send what the outbox holds without waiting for a batch: check-ins, deliveries
        due for a retry, ones a crash left; in the pool, so the loop never waits on a sink."""
        now = self.clock()
        active = self.active
        if active is None or not active.config.sinks or now - self.delivered_at < DELIVERY_EVERY:
            return
        self.delivered_at = now
        future = self.pool.submit(self.courier.kick)
        self.futures.add(future)
        future.add_done_callback(self.futures.discard)

    def _log_signals(self) -> None:
        while self.signals:
            name = self.signals.pop(0)
            log.info("signal", signal=name, action="reload" if name == "SIGHUP" else "stop")

    def tick(self) -> bool:
        """Start a batch for every lane with due KRs (KRs of a busy lane wait for it).

        True when idle because the config's period is not running, or another replica
        leads: nothing is fetched (no quota spent) meanwhile."""
        self._deliver_pending()  # any replica sends: each delivery is claimed by one
        if not self.leadership.leading:
            return True
        with self.lock:
            active = self.active
            if active is None:
                return False
            if self._idle(active):
                return True
            due = self.schedule.pop_due(self.clock())
            batches = self.lanes.add(due, active.lanes) if due else []
        for key, ids in batches:
            self._submit(key, ids)
        self.backfiller.kick(active, self.futures)  # a config's first tick: after its batches
        return False

    def _idle(self, active: Active) -> bool:
        """Whether the period of `active` is not running now; says so once per config."""
        now = self.now()
        self.health.period_ended = now >= active.config.period.ends_at
        return active.idle(now)

    def _submit(self, key: Lane, ids: list[str]) -> None:
        with self.lock:
            active = self.active
            assert active is not None
            active.users += 1
        future = self.pool.submit(self._batch, active, key, ids)
        self.futures.add(future)
        future.add_done_callback(self.futures.discard)

    def _batch(self, active: Active, key: Lane, ids: list[str]) -> None:
        began = self.clock()
        now = datetime.fromtimestamp(began, UTC)
        krs = [active.krs[i] for i in ids if i in active.krs]
        try:
            try:
                taken = active.measurer.measure(krs, now)
            except Exception as exc:  # the measurer fails KRs alone; this is a bug in it
                log.error("measure_failed", krs=ids, error=f"{type(exc).__name__}: {exc}")
                taken = [failure(kr, now, exc) for kr in krs]
            self._store(active, krs, taken, now)
        except Exception as exc:  # a bug in one batch must not stop the schedule
            log.exception("batch_failed", krs=ids, error=str(exc))
        finally:
            with self.lock:
                active.release(1)
                self.schedule.done(ids, self.clock())
                follow = self.lanes.finish(key)
                # KRs that waited for the lane: not fetched once the period is not running
                halt = self.stopping or self.active is None or self._idle(self.active)
            if follow and not halt:
                self._submit(key, follow)
            elif follow:
                with self.lock:
                    self.schedule.done(follow, self.clock())
                    self.lanes.finish(key)
            self.wake.set()

    def _store(
        self, active: Active, krs: list[KeyResult], taken: list[Measurement], now: datetime
    ) -> None:
        config, kr_ids = active.config, [k.id for k in krs]
        with self.lock:
            known = dict(self.obs)  # copied: batches of other lanes update it meanwhile
        with self.store_lock, suppress(StoreError):  # the write below meets it and reports it
            # the store's own view of these KRs: a check-in from any process counts
            known |= {} if self.closing else self.store.observations(kr_ids, now, config.period)
        before = {k.id: known.get(k.id, Observation()) for k in krs}
        rows = assess_all(active.defs, krs, taken, before, now)
        run_id, failed = uuid.uuid4().hex[:16], sum(r.error is not None for r in rows)
        outgoing = prepare(config, active.defs, rows, known)
        with self.store_lock:
            if self.closing:
                log.warning("batch_abandoned", krs=kr_ids, reason="shutting down")
                return
            try:
                with self.store.transaction(fence=self.leadership.fence):
                    ids = self.store.record_run(
                        run_id,
                        "daemon",
                        now,
                        self.now(),
                        config.digest,
                        rows,
                        config.period.name,
                        active.commit,
                    )
                    enqueue(self.store, outgoing, ids, now)
            except NotLeader as exc:  # another replica leads now: it measures these KRs
                log.warning("batch_refused", krs=kr_ids, reason=str(exc))
                return
            except StoreError as exc:
                self.health.store_ok = False
                log.error("store_failed", error=str(exc), krs=kr_ids)
                return
        self.health.store_ok = True
        self.courier.kick()  # after the commit, outside the store lock: a separate step
        with self.lock:
            if self.active is not None and self.active.config.period != config.period:
                return  # measured for a period the running config has left
            for r in rows:
                self.obs[r.kr_id] = observe_held(  # a holding override keeps its value
                    before[r.kr_id], r.value, r.error, r.measured_at, r.progress, r.status, r.slo
                )
        log.info("batch", run_id=run_id, krs=len(rows), failed=failed)

    def shutdown(self) -> bool:
        """Let in-flight batches finish within the grace period, then close the store."""
        pending = set(self.futures)
        log.info("stopping", in_flight=len(pending), grace_s=self.opts.grace)
        began = time.monotonic()
        self.backfiller.stop()  # a background backfill stops between KRs
        _, abandoned = wait(pending, timeout=self.opts.grace)
        clean = self.backfiller.join(self.opts.grace - (time.monotonic() - began))
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.leadership.stop()  # after the last write: a standby takes over at once
        with self.store_lock:
            self.closing = True
            self.store.close()
        with self.lock:
            if self.active:
                self.active.retired = True
                if not abandoned:
                    self.active.release(0)
        self.wake.close()
        log.info("stopped", abandoned=len(abandoned), backfill_abandoned=not clean)
        return bool(abandoned) or not clean

    # -- what the endpoints show --------------------------------------------------------

    def view(self) -> View | None:
        self.refresh_manual()
        with self.lock:
            if self.active is None:
                return None
            return self.active.defs, dict(self.obs), self.now()

    def refresh_manual(self) -> None:
        """Pick up check-ins made while the daemon runs: of manual KRs, and overrides, new
        or expired (then the latest automated value shows again, even one taken under it)."""
        with self.lock:
            if self.active is None:
                return
            period, krs = self.active.config.period, list(self.active.config.key_results())
            ids = {k.id for _, k in krs}
            wanted = {k for k, o in self.obs.items() if o.until is not None and k in ids}
            wanted |= {k.id for _, k in krs if k.is_manual}
        with self.store_lock:
            if self.closing:
                return
            wanted |= self.store.overridden(self.now()) & ids
            fresh = self.store.observations(sorted(wanted), self.now(), period) if wanted else {}
        with self.lock:
            self.obs.update(fresh)
