"""The outbox table: deliveries of measurements to sinks, written with the measurement in
one transaction and sent afterwards by the sinks stage.

A delivery is `pending` until it is `delivered`, `failed` for good, or (where a sink keeps
only the latest value) `superseded`. A sender claims whole (KR, sink) queues before it
sends, so two senders (replicas, a `sync --once` beside the daemon) never send one queue
at once; a claim lapses at `claimed_until`, or when its claimer's leader lease passes to
another replica (a newer epoch), or at once when its claimer was a process on this host
that has ended. One that was being sent when the process died is simply still pending
once its claim lapses, so the next sender sends it again, with the same idempotency key.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from okrsync.store.database import Database
from okrsync.store.lease import gone
from okrsync.timefmt import to_text

STATES = ("pending", "delivered", "failed", "superseded")
SHOWN = (
    "id",
    "kr_id",
    "sink",
    "idempotency_key",
    "state",
    "attempts",
    "last_status_code",
    "last_error",
    "next_attempt_at",
)


@dataclass(frozen=True)
class Claimer:
    """Who sends: `holder` (a `lease.holder_id`) and, on the leader, its lease epoch."""

    holder: str
    epoch: int | None = None


_LIVE = (  # a claim by another sender that still holds
    "o.claimed_by IS NOT NULL AND o.claimed_by != ? AND o.claimed_until >= ? AND "
    "(o.claim_epoch IS NULL OR o.claim_epoch >= "
    "coalesce((SELECT epoch FROM leases WHERE name = 'leader'), 0))"
)


class Outbox:
    """The deliveries table of one store."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def enqueue(
        self, rows: list[dict[str, Any]], now: datetime, supersede: Collection[str] = ()
    ) -> None:
        """Add pending deliveries (call inside the measurement's `transaction()`): each row
        has measurement_id, kr_id, sink, idempotency_key and payload (JSON text).

        For the sinks in `supersede` (they keep only the latest value) the older pending
        deliveries of the same (KR, sink) become `superseded`, never sent; the newest one
        takes over the latest `next_attempt_at` they had, so a Retry-After still holds."""
        stamp = to_text(now)
        self.db.executemany(
            "INSERT INTO deliveries (measurement_id, kr_id, sink, idempotency_key, state, "
            "attempts, created_at, payload) "
            "VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)",
            [
                (
                    r["measurement_id"],
                    r["kr_id"],
                    r["sink"],
                    r["idempotency_key"],
                    stamp,
                    r["payload"],
                )
                for r in rows
            ],
        )
        pairs = sorted({(r["kr_id"], r["sink"]) for r in rows if r["sink"] in supersede})
        for kr_id, sink in pairs:
            self._supersede(kr_id, sink)

    def _supersede(self, kr_id: str, sink: str) -> None:
        newest, due = self.db.execute(
            "SELECT MAX(id), MAX(next_attempt_at) FROM deliveries "
            "WHERE state = 'pending' AND kr_id = ? AND sink = ?",
            [kr_id, sink],
        ).fetchone()
        self.db.execute(
            "UPDATE deliveries SET state = 'superseded', next_attempt_at = NULL "
            "WHERE state = 'pending' AND kr_id = ? AND sink = ? AND id < ?",
            [kr_id, sink, newest],
        )
        if due is not None:
            self.db.execute("UPDATE deliveries SET next_attempt_at = ? WHERE id = ?", [due, newest])

    def supersede_stale(self, sinks: Collection[str]) -> int:
        """For sinks that keep only the latest value: a pending delivery with a newer one
        pending or delivered (a failed one re-queued by `deliveries retry`, say) becomes
        `superseded`, so an old value never overwrites a newer one; how many did."""
        if not sinks:
            return 0
        marks = ", ".join("?" for _ in sinks)
        return int(
            self.db.execute(
                "UPDATE deliveries SET state = 'superseded', next_attempt_at = NULL "
                f"WHERE state = 'pending' AND sink IN ({marks}) AND id < ("
                "SELECT MAX(d.id) FROM deliveries d WHERE d.kr_id = deliveries.kr_id "
                "AND d.sink = deliveries.sink AND d.state IN ('pending', 'delivered'))",
                sorted(sinks),
            ).rowcount
        )

    def claim(self, claimer: Claimer, now: float, seconds: float) -> list[dict[str, Any]]:
        """Claim, for `seconds` from `now` (epoch seconds on the database's clock), every
        pending delivery of the (KR, sink) queues no other live claim holds; the pending
        deliveries `claimer` now holds, oldest first within each queue. Call inside a
        transaction."""
        others = self.db.execute(
            "SELECT DISTINCT claimed_by FROM deliveries WHERE state = 'pending' "
            "AND claimed_by IS NOT NULL AND claimed_by != ?",
            [claimer.holder],
        ).fetchall()
        for (holder,) in others:
            if gone(holder):  # a sender on this host that died mid-step
                self.release(Claimer(holder))
        self.db.execute(
            "UPDATE deliveries SET claimed_by = ?, claimed_until = ?, claim_epoch = ? "
            "WHERE id IN (SELECT d.id FROM deliveries d WHERE d.state = 'pending' AND NOT "
            f"EXISTS (SELECT 1 FROM deliveries o WHERE o.state = 'pending' AND o.kr_id = "
            f"d.kr_id AND o.sink = d.sink AND {_LIVE}){self.db.skip_locked('d')})",
            [claimer.holder, now + seconds, claimer.epoch, claimer.holder, now],
        )
        return [
            dict(r)
            for r in self.db.query(
                "SELECT * FROM deliveries WHERE state = 'pending' AND claimed_by = ? "
                "ORDER BY kr_id, sink, id",
                [claimer.holder],
            )
        ]

    def release(self, claimer: Claimer) -> None:
        """Give up `claimer`'s claims (what it left pending goes to the next sender)."""
        self.db.execute(
            "UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL, claim_epoch = NULL "
            "WHERE claimed_by = ?",
            [claimer.holder],
        )

    def renew(self, claimer: Claimer, now: float, seconds: float) -> None:
        """Extend `claimer`'s claims to `seconds` from `now` (a long delivery step)."""
        self.db.execute(
            "UPDATE deliveries SET claimed_until = ? WHERE claimed_by = ? AND state = 'pending'",
            [now + seconds, claimer.holder],
        )

    def update(self, delivery_id: int, claimer: Claimer | None = None, **fields: Any) -> bool:
        """Record an attempt's outcome (its own small transaction); with `claimer`, only
        while it still holds the delivery. Whether it was recorded."""
        names = ", ".join(f"{k} = ?" for k in fields)
        sql, params = f"UPDATE deliveries SET {names} WHERE id = ?", [*fields.values(), delivery_id]
        if claimer is not None:
            sql += " AND claimed_by = ?"
            params.append(claimer.holder)
        return int(self.db.execute(sql, params).rowcount) == 1

    def listing(self, failed_only: bool = False) -> list[dict[str, Any]]:
        """Deliveries for `okrsync deliveries`, oldest first, with the shown fields."""
        where = " WHERE state = 'failed'" if failed_only else ""
        rows = self.db.query(f"SELECT {', '.join(SHOWN)} FROM deliveries{where} ORDER BY id")
        return [dict(r) for r in rows]

    def requeue(self, delivery_id: int | None) -> int:
        """Make failed deliveries (one, or all with None) pending again, their attempts
        spent afresh; how many were."""
        sql = (
            "UPDATE deliveries SET state = 'pending', next_attempt_at = NULL, attempts = 0 "
            "WHERE state = 'failed'"
        )
        params: list[Any] = []
        if delivery_id is not None:
            sql += " AND id = ?"
            params.append(delivery_id)
        return int(self.db.execute(sql, params).rowcount)

    def get(self, delivery_id: int) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM deliveries WHERE id = ?", [delivery_id]))
        return dict(rows[0]) if rows else None
