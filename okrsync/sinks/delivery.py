"""The delivery step: send the outbox's pending deliveries, after (never inside) the
measurement transaction, in `sync --once` and the daemon.

* Order: the deliveries of one KR to one sink go one after the other, oldest first; one
  that cannot be delivered yet holds back the later ones. Up to `workers` (KR, sink)
  queues are sent at once.
* Retries (tenacity): a retryable failure is tried again within the run with backoff (a
  429's Retry-After honoured up to `max_wait`), then left pending with `next_attempt_at`
  for a later run, until the sink's `max_attempts` are spent: then it failed for good,
  as does any other 4xx at once. Every attempt's outcome is written before the next.
* Claims: a step first claims the (KR, sink) queues no other sender holds (one store
  transaction), sends those, and gives back what it left pending. A process that dies
  mid-send leaves its deliveries pending; once its claim lapses (CLAIM_SECONDS, or at
  once when it was the leader and another replica took the lease) the next sender sends
  them again with the same idempotency key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from okrsync.config.sinks import AnySink
from okrsync.sinks import senders
from okrsync.sinks.transport import DeliveryError
from okrsync.store.lease import holder_id
from okrsync.store.outbox import Claimer
from okrsync.store.store import Store
from okrsync.timefmt import from_text, to_text, utcnow

log = structlog.get_logger("okrsync.sinks.delivery")
CLAIM_SECONDS = 300.0
"""How long a step's claim holds: longer than a step takes (3 attempts, waits of 30 s)."""
Sender = Callable[[str, AnySink, bytes, str], int]
Sink = AnySink


@dataclass(frozen=True)
class Policy:
    """How hard one run tries; tests shrink the waits."""

    attempts_per_run: int = 3
    backoff: float = 0.5  # first wait; doubles per attempt
    max_backoff: float = 30.0
    max_wait: float = 30.0  # the longest Retry-After waited for within a run
    workers: int = 8
    sleep: Callable[[float], None] = time.sleep


@dataclass
class Report:
    """What one delivery step did."""

    sent: int = 0
    failed: int = 0  # failed for good in this step
    pending: int = 0  # left for a later run
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, outcome: str) -> None:
        with self.lock:
            setattr(self, outcome, getattr(self, outcome) + 1)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, DeliveryError) and exc.retryable and (exc.retry_after is None)


def deliver(
    store: Store,
    sinks: dict[str, Sink],
    *,
    policy: Policy | None = None,
    lock: AbstractContextManager[Any] | None = None,
    sender: Sender = senders.send,
    clock: Callable[[], datetime] = utcnow,
    claimer: Claimer | None = None,
) -> Report:
    """Send every pending delivery that is due and not claimed by another sender; `lock`
    guards the store's connection when others use it too (the daemon); `claimer` names
    this sender (the daemon's, with its lease epoch; else a new one)."""
    policy = policy or Policy()
    guard = lock or nullcontext()
    claimer = claimer or Claimer(holder_id())
    latest = {name for name, sink in sinks.items() if sink.latest_only}
    with guard, store.transaction():
        store.outbox.supersede_stale(latest)
        now = store.db.clock(time.time())
        rows = store.outbox.claim(claimer, now, CLAIM_SECONDS)
    try:
        return _send(store, sinks, rows, policy, guard, sender, clock, claimer)
    finally:
        with guard:
            store.outbox.release(claimer)


def _send(
    store: Store,
    sinks: dict[str, Sink],
    rows: list[dict[str, Any]],
    policy: Policy,
    guard: AbstractContextManager[Any],
    sender: Sender,
    clock: Callable[[], datetime],
    claimer: Claimer,
) -> Report:
    """Send the claimed `rows`, a (KR, sink) queue per worker; the claims are renewed
    every third of CLAIM_SECONDS, and a queue whose claim was lost stops at once."""
    queues: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        queues.setdefault((row["kr_id"], row["sink"]), []).append(row)
    report = Report()
    if not queues:
        return report
    renewed = [time.monotonic()]
    renewing = threading.Lock()

    def write(delivery_id: int, **fields: Any) -> None:
        with guard:
            if not store.outbox.update(delivery_id, claimer, **fields):
                raise ClaimLost(delivery_id)

    def renew() -> None:
        with renewing:
            if time.monotonic() - renewed[0] < CLAIM_SECONDS / 3:
                return
            renewed[0] = time.monotonic()
            with guard:
                store.outbox.renew(claimer, store.db.clock(time.time()), CLAIM_SECONDS)

    def run(queue: list[dict[str, Any]]) -> None:
        for i, row in enumerate(queue):
            try:
                renew()
                if _one(row, sinks.get(row["sink"]), policy, sender, clock, write, report):
                    continue
                left = queue[i + 1 :]
            except ClaimLost:  # another sender has the queue now: leave the rest to it
                log.warning("delivery_claim_lost", id=row["id"], sink=row["sink"])
                left = queue[i:]
            for _ in left:
                report.count("pending")
            return

    with ThreadPoolExecutor(policy.workers, thread_name_prefix="deliver") as pool:
        list(pool.map(run, queues.values()))
    log.info("deliveries", sent=report.sent, failed=report.failed, pending=report.pending)
    return report


def _one(
    row: dict[str, Any],
    sink: Sink | None,
    policy: Policy,
    sender: Sender,
    clock: Callable[[], datetime],
    write: Callable[..., None],
    report: Report,
) -> bool:
    """Try one delivery; whether the queue may go on to the next one."""
    if sink is None:
        write(row["id"], state="failed", last_error=f"sink '{row['sink']}' is not in the config")
        report.count("failed")
        return True
    due = row["next_attempt_at"]
    if due and from_text(due) > clock():
        report.count("pending")
        return False
    attempts = int(row["attempts"] or 0)
    left = sink.max_attempts - attempts
    if left <= 0:
        write(row["id"], state="failed", next_attempt_at=None)
        report.count("failed")
        return True
    body = row["payload"].encode()

    def attempt() -> int:
        nonlocal attempts
        attempts += 1
        try:
            status = sender(row["sink"], sink, body, row["idempotency_key"])
        except DeliveryError as exc:
            write(row["id"], attempts=attempts, last_status_code=exc.status, last_error=str(exc))
            raise
        now = to_text(clock())
        write(
            row["id"],
            state="delivered",
            attempts=attempts,
            last_status_code=status,
            last_error=None,
            delivered_at=now,
            next_attempt_at=None,
        )
        return status

    def wait(state: RetryCallState) -> float:
        return float(min(policy.max_backoff, policy.backoff * 2 ** (state.attempt_number - 1)))

    def honour(exc: BaseException) -> bool:
        if isinstance(exc, DeliveryError) and exc.retry_after is not None:
            return exc.retry_after <= policy.max_wait
        return _retryable(exc)

    def wait_or_retry_after(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, DeliveryError) and exc.retry_after is not None:
            return exc.retry_after
        return wait(state)

    retrying = Retrying(
        stop=stop_after_attempt(min(left, policy.attempts_per_run)),
        retry=retry_if_exception(honour),
        wait=wait_or_retry_after,
        sleep=policy.sleep,
        reraise=True,
    )
    try:
        retrying(attempt)
    except DeliveryError as exc:
        if not exc.retryable or attempts >= sink.max_attempts:
            write(row["id"], state="failed", next_attempt_at=None)
            log.warning("delivery_failed", id=row["id"], sink=row["sink"], error=str(exc))
            report.count("failed")
            return True
        later = exc.retry_after or min(policy.max_backoff, policy.backoff * 2**attempts)
        write(row["id"], next_attempt_at=to_text(clock() + timedelta(seconds=later)))
        report.count("pending")
        return False
    report.count("sent")
    return True


class ClaimLost(Exception):
    """This sender's claim on a delivery lapsed and another sender took it over."""


class Courier:
    """One delivery step at a time in a long-lived process (the daemon): `kick()` from any
    thread after a commit; a kick while a step runs makes that step go round once more."""

    def __init__(
        self,
        store: Store,
        sinks: Callable[[], dict[str, Sink]],
        lock: AbstractContextManager[Any],
        policy: Policy | None = None,
        claimer: Callable[[], Claimer] | None = None,
    ) -> None:
        """`claimer()`: who sends, asked at each step (the leader's epoch may change)."""
        self.store, self.sinks, self.lock, self.policy = store, sinks, lock, policy
        self.claimer = claimer
        self._running = threading.Lock()
        self._again = threading.Event()

    def kick(self) -> None:
        self._again.set()
        while self._again.is_set() and self._running.acquire(blocking=False):
            try:
                while self._again.is_set():
                    self._again.clear()
                    try:
                        claimer = self.claimer() if self.claimer else None
                        sinks = self.sinks()
                        deliver(
                            self.store, sinks, policy=self.policy, lock=self.lock, claimer=claimer
                        )
                    except Exception as exc:  # a failing sink or store must not stop the batch
                        log.error("delivery_step_failed", error=f"{type(exc).__name__}: {exc}")
            finally:
                self._running.release()
