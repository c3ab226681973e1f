"""The leader lease, kept in the store itself (in the style of a Kubernetes Lease): one row
with its holder, expiry and epoch, the fencing token every write of a run checks.

Times are seconds since the epoch on the clock the caller passes: the database server's
on PostgreSQL, the host's on SQLite (one host, one clock).
Each function runs inside the caller's transaction (BEGIN IMMEDIATE takes the write
lock first, so two replicas never both see the lease free).
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass

from okrsync.store.database import Database

LEADER = "leader"


def holder_id() -> str:
    """`host:pid:pidns:random`: names this process in the lease, in delivery claims and in
    logs (the PID namespace: two containers may share a host name and a pid)."""
    return f"{socket.gethostname()}:{os.getpid()}:{_pid_namespace()}:{uuid.uuid4().hex[:6]}"


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid").removeprefix("pid:[").removesuffix("]")
    except OSError:
        return "0"


def gone(holder: str) -> bool:
    """Whether `holder` (a holder_id) names a process that has ended on this host, in this
    PID namespace: its claims need not wait out their time (elsewhere nothing can tell)."""
    parts = holder.split(":")
    if len(parts) != 4:
        return False
    host, pid, namespace, _ = parts
    if (host, namespace) != (socket.gethostname(), _pid_namespace()) or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, another user's
        return False
    return False


@dataclass(frozen=True)
class Holding:
    """Who holds the lease, under which epoch, until when."""

    holder: str
    epoch: int
    expires_at: float


def current(db: Database) -> Holding | None:
    row = db.execute(
        "SELECT holder, epoch, expires_at FROM leases WHERE name = ?", [LEADER]
    ).fetchone()
    return None if row is None else Holding(str(row[0]), int(row[1]), float(row[2]))


def acquire(db: Database, holder: str, seconds: float, now: float) -> int | None:
    """Take the lease for `seconds` when it is free or expired (a new epoch), or extend it
    when `holder` has it already; None while another holder's lease runs."""
    held = current(db)
    if held is not None and held.holder != holder and held.expires_at > now:
        return None
    if held is None:
        db.execute(
            "INSERT INTO leases (name, holder, epoch, expires_at, acquired_at) "
            "VALUES (?, ?, 1, ?, ?)",
            [LEADER, holder, now + seconds, now],
        )
        return 1
    epoch = held.epoch if held.holder == holder and held.expires_at > now else held.epoch + 1
    db.execute(
        "UPDATE leases SET holder = ?, epoch = ?, expires_at = ?, acquired_at = ? WHERE name = ?",
        [holder, epoch, now + seconds, now, LEADER],
    )
    return epoch


def renew(db: Database, holder: str, epoch: int, seconds: float, now: float) -> bool:
    """Extend the lease by `seconds` from `now` while `holder` holds it under `epoch`. A
    lapsed lease nobody has taken since is still this holder's: no one else can have
    written under it (taking it starts a new epoch)."""
    cursor = db.execute(
        "UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND epoch = ?",
        [now + seconds, LEADER, holder, epoch],
    )
    return cursor.rowcount == 1


def holds(db: Database, holder: str, epoch: int) -> bool:
    """Whether `holder` still holds the lease under `epoch`: the fencing check. Another
    replica that took it over has raised the epoch, so a late write is refused."""
    held = current(db)
    return held is not None and (held.holder, held.epoch) == (holder, epoch)


def release(db: Database, holder: str, epoch: int) -> None:
    """Give the lease up (a clean stop), so a standby takes over at its next check."""
    db.execute(
        "UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ? AND epoch = ?",
        [LEADER, holder, epoch],
    )
