"""`okrsync deliveries`: the outbox as the person on call sees it, and re-queueing."""

from __future__ import annotations

import json
from typing import Any

from okrsync.cli.exits import EXIT_INVALID, EXIT_OK
from okrsync.cli.settings import Settings
from okrsync.errors import UsageError
from okrsync.sinks.delivery import Report
from okrsync.store.store import Store


def deliveries(args: Any, settings: Settings) -> int:
    """List deliveries (`--failed`: only those failed for good), or `retry ID|--all`."""
    if getattr(args, "action", None) == "retry":
        return retry(args, settings)
    store = Store(settings.db, create=False)
    try:
        rows = store.outbox.listing(failed_only=args.failed)
    finally:
        store.close()
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        print("no failed deliveries" if args.failed else "no deliveries")
        return EXIT_OK
    for r in rows:
        code = r["last_status_code"] if r["last_status_code"] is not None else "-"
        line = (
            f"#{r['id']} {r['kr_id']} -> {r['sink']}: {r['state']}, {r['attempts']} "
            f"attempt{'' if r['attempts'] == 1 else 's'}, last status {code}"
        )
        if r["state"] == "pending" and r["next_attempt_at"]:
            line += f", next attempt {r['next_attempt_at']}"
        if r["last_error"]:
            line += f": {r['last_error']}"
        print(f"{line}  [key {r['idempotency_key']}]")
    return EXIT_OK


def retry(args: Any, settings: Settings) -> int:
    """Make failed deliveries pending again; the next `sync --once` (or the daemon) sends them."""
    if args.all == (args.id is not None):
        raise UsageError("deliveries retry takes one delivery ID or --all")
    delivery_id: int | None = None
    if args.id is not None:
        try:
            delivery_id = int(args.id)
        except ValueError:
            raise UsageError(f"ID must be a delivery's number, not '{args.id}'") from None
    store = Store(settings.db)
    try:
        if delivery_id is not None:
            row = store.outbox.get(delivery_id)
            if row is None:
                raise UsageError(f"no delivery #{delivery_id} in {store.path}")
            if row["state"] != "failed":
                raise UsageError(f"delivery #{delivery_id} is {row['state']}, not failed")
        count = store.outbox.requeue(delivery_id)
    finally:
        store.close()
    print(f"re-queued {count} failed deliver{'y' if count == 1 else 'ies'}: sync --once sends them")
    return EXIT_OK if count or delivery_id is None else EXIT_INVALID


def summary(report: Report | None) -> str | None:
    """`deliveries: 3 sent, 1 failed for good (okrsync deliveries --failed), 2 pending`."""
    if report is None or not (report.sent or report.failed or report.pending):
        return None
    parts = [f"{report.sent} sent"]
    if report.failed:
        parts.append(f"{report.failed} failed for good (okrsync deliveries --failed)")
    if report.pending:
        parts.append(f"{report.pending} pending (sent by the next run)")
    return "deliveries: " + ", ".join(parts)
