"""The outbox table: deliveries of measurements to sinks, written with the measurement in
one transaction and sent afterwards by the sinks stage.

A delivery is `pending` until it is `delivered`, `failed` for good, or (where a sink keeps
only the latest value) `superseded`. Nothing marks a delivery "in flight": one that was
being sent when the process died is simply still pending, so the next run sends it
again, with the same idempotency key.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from okrsync.store.database import Database
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

    def pending(self) -> list[dict[str, Any]]:
        """Every pending delivery, oldest first within each (KR, sink)."""
        return [
            dict(r)
            for r in self.db.query(
                "SELECT * FROM deliveries WHERE state = 'pending' ORDER BY kr_id, sink, id"
            )
        ]

    def update(self, delivery_id: int, **fields: Any) -> None:
        """Record an attempt's outcome (its own small transaction)."""
        names = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(
            f"UPDATE deliveries SET {names} WHERE id = ?", [*fields.values(), delivery_id]
        )

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
