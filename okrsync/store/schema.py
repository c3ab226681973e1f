"""The store's schema: the migrations that build it, and the check that a database holds it."""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from okrsync.errors import StoreError
from okrsync.store.database import Database

SCHEMA_VERSION = 10


def _migrate_v1(db: sqlite_utils.Database) -> None:
    db.table("objectives").create(
        {
            "id": str,
            "title": str,
            "owner": str,
            "parent": str,
            "weight": float,
            "retired_at": str,
            "updated_at": str,
        },
        pk="id",
    )
    db.table("key_results").create(
        {
            "id": str,
            "objective_id": str,
            "title": str,
            "source": str,
            "unit": str,
            "start": float,
            "target": float,
            "weight": float,
            "every": str,
            "definition": str,
            "retired_at": str,
            "updated_at": str,
        },
        pk="id",
    )
    db.table("runs").create(
        {
            "id": str,
            "kind": str,
            "started_at": str,
            "finished_at": str,
            "config_digest": str,
            "measured": int,
            "failed": int,
        },
        pk="id",
    )
    db.table("measurements").create(
        {
            "id": int,
            "kr_id": str,
            "run_id": str,
            "measured_at": str,
            "value": float,
            "progress": float,
            "status": str,
            "source": str,
            "query": str,
            "inputs": str,
            "error": str,
            "manual": int,
            "note": str,
        },
        pk="id",
    )
    db.table("measurements").create_index(["kr_id", "measured_at"])


def _migrate_v2(db: sqlite_utils.Database) -> None:
    """Periods: each measurement belongs to one; each period keeps the definitions it had.

    Existing measurements get no period here (the store does not know its periods yet):
    the first config whose period contains them adopts them (`Store.sync_config`)."""
    db.table("measurements").add_column("period", str)
    db.table("measurements").create_index(["period", "measured_at"])
    db.table("periods").create(
        {
            "name": str,
            "start": str,
            "end": str,
            "timezone": str,
            "starts_at": str,
            "ends_at": str,
            "thresholds": str,
            "grading": str,
            "first_seen_at": str,
            "updated_at": str,
        },
        pk="name",
    )
    db.table("period_objectives").create(
        {
            "period": str,
            "position": int,
            "objective_id": str,
            "title": str,
            "owner": str,
            "parent": str,
            "weight": float,
            "kind": str,
        },
        pk=("period", "objective_id"),
    )
    db.table("period_key_results").create(
        {
            "period": str,
            "position": int,
            "kr_id": str,
            "objective_id": str,
            "title": str,
            "unit": str,
            "source": str,
            "start": float,
            "start_from_previous": int,
            "target": float,
            "weight": float,
            "kind": str,
            "max_age": float,
        },
        pk=("period", "kr_id"),
    )


def _migrate_v3(db: sqlite_utils.Database) -> None:
    """The outbox: each delivery of a measurement to a sink, written in the measurement's
    own transaction and sent afterwards. `pending` is the only state a crash can leave
    behind (there is no lease): the next run sends it again, with the same key."""
    db.table("deliveries").create(
        {
            "id": int,
            "measurement_id": int,
            "kr_id": str,
            "sink": str,
            "idempotency_key": str,
            "state": str,
            "attempts": int,
            "last_status_code": int,
            "last_error": str,
            "next_attempt_at": str,
            "created_at": str,
            "delivered_at": str,
            "payload": str,
        },
        pk="id",
        not_null={"measurement_id", "kr_id", "sink", "idempotency_key", "state", "payload"},
        defaults={"attempts": 0},
    )
    db.table("deliveries").create_index(["idempotency_key"], unique=True)
    db.table("deliveries").create_index(["state", "kr_id", "sink", "id"])


def _migrate_v4(db: sqlite_utils.Database) -> None:
    """Provenance: where each value came from, so `explain` can show it whole.

    Per measurement: the source's raw answer (JSON), when the fetch finished and how long
    it took, who checked a value in and until when a manual override holds. Per run: the
    git commit of the config directory (`apply`; the config's hash is `config_digest`)."""
    for name, kind in (
        ("answer", str),
        ("fetched_at", str),
        ("duration_s", float),
        ("author", str),
        ("until", str),
    ):
        db.table("measurements").add_column(name, kind)
    db.table("runs").add_column("config_commit", str)


def _migrate_v5(db: sqlite_utils.Database) -> None:
    """Overrides: a small partial index of the rows with an expiry (`until`), so finding a
    KR's holding override never scans its automated history."""
    db.execute(
        "CREATE INDEX IF NOT EXISTS idx_measurements_overrides "
        "ON measurements (kr_id, measured_at) WHERE until IS NOT NULL"
    )


def _migrate_v6(db: sqlite_utils.Database) -> None:
    """Indexes where the reads are: the latest run (`plan`'s baseline) without scanning
    every run; and no unique index on idempotency keys, which nothing looks up (each is
    128 random bits) and whose scattered inserts were a third of the outbox's cost."""
    db.execute("CREATE INDEX IF NOT EXISTS idx_runs_started_at ON runs (started_at)")
    db.execute("DROP INDEX IF EXISTS idx_deliveries_idempotency_key")


def _migrate_v7(db: sqlite_utils.Database) -> None:
    """Backfill: a measurement taken afterwards for a past instant is `backfilled`; one
    re-measured by `backfill --replace` is `superseded` (kept in history, never shown)."""
    for name in ("backfilled", "superseded"):
        db.table("measurements").add_column(name, int, not_null_default=0)


def _migrate_v8(db: sqlite_utils.Database) -> None:
    """SLO KRs: each measurement keeps its SLI, counts, budget and burn rates (JSON), and a
    period's KR definitions keep the SLO's objective and window, to judge by its budget."""
    db.table("measurements").add_column("slo", str)
    db.table("period_key_results").add_column("slo", str)


def _migrate_v9(db: sqlite_utils.Database) -> None:
    """Replicas: the leader lease (holder, epoch as fencing token, expiry in epoch seconds),
    so several `okrsync run` on one store have one leader and a late write is refused."""
    db.table("leases").create(
        {"name": str, "holder": str, "epoch": int, "expires_at": float, "acquired_at": float},
        pk="name",
        not_null={"holder", "epoch", "expires_at"},
    )


def _migrate_v10(db: sqlite_utils.Database) -> None:
    """Deliveries claimed by one sender at a time: who (`claimed_by`), until when (epoch
    seconds), and under which leader epoch, so a claim dies with its claimer's lease."""
    for statement in CLAIM_COLUMNS:
        db.execute(statement.format(text="TEXT", integer="INTEGER", real="REAL"))


CLAIM_COLUMNS = (
    "ALTER TABLE deliveries ADD COLUMN claimed_by {text}",
    "ALTER TABLE deliveries ADD COLUMN claimed_until {real}",
    "ALTER TABLE deliveries ADD COLUMN claim_epoch {integer}",
)
"""Migration 10 in SQL both engines accept, with each engine's column types."""


MIGRATIONS: dict[int, Callable[[sqlite_utils.Database], None]] = {
    1: _migrate_v1,
    2: _migrate_v2,
    3: _migrate_v3,
    4: _migrate_v4,
    5: _migrate_v5,
    6: _migrate_v6,
    7: _migrate_v7,
    8: _migrate_v8,
    9: _migrate_v9,
    10: _migrate_v10,
}


def mismatch(db: Database, version: int = SCHEMA_VERSION) -> str | None:
    """What is missing from okrsync's tables and columns of schema `version` in `db`
    (None: they all exist).

    Built from the migrations themselves on a scratch database, so it never drifts."""
    want = built(version)
    have = db.tables()
    for name in want.table_names():
        if name not in have:
            return f"no table {name}"
        missing = sorted(set(want[name].columns_dict) - db.columns(name))
        if missing:
            return f"table {name} lacks {', '.join(missing)}"
    return None


def built(version: int = SCHEMA_VERSION) -> sqlite_utils.Database:
    """A scratch SQLite database in memory with okrsync's schema of `version`."""
    want = sqlite_utils.Database(memory=True)
    for step in range(1, version + 1):
        MIGRATIONS[step](want)
    return want


def not_okrsync(where: str, tables: set[str]) -> StoreError:
    """The error for a database that holds no okrsync schema version."""
    return StoreError(
        f"{where}: not an okrsync store (no okrsync schema version"
        + (f"; it holds tables {', '.join(sorted(tables)[:5])}" if tables else "")
        + "): point --db / OKRSYNC_DB at okrsync's database; nothing was changed"
    )
