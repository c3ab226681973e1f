"""Which of several `okrsync run` on one store leads: the one holding the store's lease.

The leader renews the lease every third of `--lease`; a standby checks it as often and
takes it once expired. Every write of a run is fenced: it checks, in its own
transaction, that this process still holds the lease under its epoch, so a paused or
partitioned ex-leader's late write is refused and it steps down.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from okrsync.errors import OkrsyncError, StoreError
from okrsync.store import lease
from okrsync.store.errors import LOCK_TIMEOUT
from okrsync.store.lease import holder_id
from okrsync.store.outbox import Claimer
from okrsync.store.store import Store

log = structlog.get_logger("okrsync.service.leadership")


class NotLeader(OkrsyncError):
    """This process no longer holds the leader lease: its write was refused."""


class Leadership:
    """Holds, renews and checks this process's claim on the store's lease.

    `clock` is read inside the lease's transaction; the daemon's is the database server's
    (`Database.clock`), so replicas on several hosts agree on when a lease expires.
    `changed(leading)` is called from the lease thread when this process gains or loses
    the lease; `standby()` is called at each check while another process leads."""

    def __init__(
        self,
        store: Store,
        store_lock: threading.Lock,
        seconds: float,
        clock: Callable[[], float],
        changed: Callable[[bool], None],
        standby: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.store_lock = store_lock
        self.seconds = seconds
        self.clock = clock
        self.changed = changed
        self.standby = standby
        self.holder = holder_id()
        self.epoch: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="okrsync-lease", daemon=True)

    @property
    def leading(self) -> bool:
        return self.epoch is not None

    @property
    def every(self) -> float:
        """Seconds between two renewals (leader) or checks (standby): a third of the lease."""
        return self.seconds / 3

    def start(self) -> None:
        """Try for the lease at once (so a lone replica leads from its first tick), then
        keep renewing or checking in the background."""
        self.step()
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing and give the lease up, so a standby takes over at its next check."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=LOCK_TIMEOUT + 1)  # a step in progress ends first
        epoch = self.epoch
        if epoch is None:
            return
        self.epoch = None
        try:
            with self.store_lock, self.store.transaction():
                lease.release(self.store.db, self.holder, epoch)
            log.info("leader_released", holder=self.holder, epoch=epoch)
        except StoreError as exc:  # it expires on its own
            log.warning("leader_release_failed", holder=self.holder, error=str(exc))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.step()
            except Exception:  # the lease thread must go on: a failed step is a lost lease
                log.exception("lease_step_failed", holder=self.holder)
                self._lose("lease step failed")

    def step(self) -> None:
        """Renew the lease (leader) or try to take it (standby); say when that changes."""
        epoch = self.epoch
        try:
            with self.store_lock, self.store.transaction():
                now = self.clock()  # under the write lock: no replica moves the lease meanwhile
                if epoch is not None:
                    kept = lease.renew(self.store.db, self.holder, epoch, self.seconds, now)
                    taken = epoch if kept else None
                else:
                    taken = lease.acquire(self.store.db, self.holder, self.seconds, now)
        except StoreError as exc:
            log.warning("lease_unreachable", holder=self.holder, error=str(exc))
            taken = None
        if epoch is not None and taken is None:
            self._lose("the lease could not be renewed in time")
        elif epoch is None and taken is not None:
            self.epoch = taken
            log.info("leader_acquired", holder=self.holder, epoch=taken, lease_s=self.seconds)
            self.changed(True)
        if self.epoch is None:
            self.standby()

    def claimer(self) -> Claimer:
        """This process as a sender of deliveries: its claims die with its lease."""
        return Claimer(self.holder, self.epoch)

    def fence(self) -> None:
        """Inside a write transaction: refuse it unless this process still holds the lease
        under its epoch (no other replica has taken it since)."""
        epoch = self.epoch
        if epoch is None or not lease.holds(self.store.db, self.holder, epoch):
            self._lose("a write found the lease held by another replica or expired")
            raise NotLeader(f"{self.holder} is not the leader (epoch {epoch}): write refused")

    def _lose(self, why: str) -> None:
        epoch, self.epoch = self.epoch, None
        if epoch is not None:
            log.warning("leader_lost", holder=self.holder, epoch=epoch, reason=why)
            self.changed(False)
