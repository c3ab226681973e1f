"""The OKR store: the only module that touches SQLite (via sqlite-utils).

Objectives and KRs are synced from config (removed ones marked retired, history kept);
measurements are an append-only history. Each run writes in one transaction (WAL mode).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from okrsync.config.loader import Config
from okrsync.config.model import Period
from okrsync.errors import StoreError
from okrsync.measure.measurement import Measurement
from okrsync.progress.definitions import Definitions, from_config
from okrsync.progress.maths import Observation
from okrsync.store import periods, provenance
from okrsync.store import rows as measurement_rows
from okrsync.store.errors import LOCK_TIMEOUT, store_error
from okrsync.store.outbox import Outbox
from okrsync.store.schema import MIGRATIONS, SCHEMA_VERSION, mismatch
from okrsync.timefmt import to_text

_LAST_APPLIED = (  # a backfill applies no config: plan compares with the run before it
    "SELECT * FROM runs WHERE kind != 'backfill' ORDER BY started_at DESC LIMIT 1"
)


class Store:
    """An open OKR store; every sqlite error leaves here as a one-line StoreError."""

    def __init__(self, path: Path | str, *, create: bool = True) -> None:
        """Open (and, unless `create` is False, create or migrate) the store at `path`.

        `create=False` is for commands that only read: the file is opened read-only and
        never written or migrated; a missing or empty file reads as an empty store.
        """
        self.path = str(path)
        file = Path(self.path)
        memory = self.path == ":memory:" or (
            not create and (not file.exists() or (file.is_file() and file.stat().st_size == 0))
        )
        try:
            if memory:
                target, uri = ":memory:", False
            elif create:
                file.parent.mkdir(parents=True, exist_ok=True)
                target, uri = self.path, False
            else:
                target, uri = f"{file.resolve().as_uri()}?mode=ro", True
            conn = sqlite3.connect(
                target,
                timeout=LOCK_TIMEOUT,
                isolation_level=None,
                check_same_thread=False,
                uri=uri,
            )
            self.db = sqlite_utils.Database(conn)
            self._open(writable=create or memory)
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from None
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create the database: {exc.strerror}") from None

    def _open(self, *, writable: bool) -> None:
        """Check the schema is okrsync's; create or migrate it only when allowed to write."""
        version = int(self.db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: the database has schema version {version}, newer than this "
                f"okrsync understands ({SCHEMA_VERSION}); upgrade okrsync"
            )
        tables = self.db.table_names()
        if version == 0 and (tables or not writable):
            raise StoreError(
                f"{self.path}: not an okrsync store (no okrsync schema version"
                + (f"; it holds tables {', '.join(sorted(tables)[:5])}" if tables else "")
                + "): point --db / OKRSYNC_DB at okrsync's database; nothing was changed"
            )
        if version > 0:
            problem = mismatch(self.db, version)
            if problem:
                raise StoreError(
                    f"{self.path}: its tables do not match okrsync's schema ({problem}); "
                    "nothing was changed"
                )
        if version == SCHEMA_VERSION:
            return
        if not writable:
            self._migrated_copy()
        elif self.path != ":memory:":
            self.db.enable_wal()
        with self.db.atomic():
            for step in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[step](self.db)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _migrated_copy(self) -> None:
        """Read an older store through a migrated copy in memory: the file stays as it is
        until a command that writes migrates it."""
        memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self.db.conn.backup(memory)
        self.db.close()
        self.db = sqlite_utils.Database(memory)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self, fence: Callable[[], None] | None = None) -> Iterator[None]:
        """All writes inside commit together or not at all.

        The outermost level is BEGIN IMMEDIATE: it takes the write lock up front, so a
        writer busy elsewhere (the daemon, a checkin) is waited for up to LOCK_TIMEOUT
        instead of failing at once on a read-to-write upgrade. Inner levels are savepoints.
        `fence` runs first, under that lock: it raises to refuse the writes (a replica
        whose leader lease has lapsed), and nothing is written.
        """
        try:
            if self.db.conn.in_transaction:
                with self.db.atomic():
                    yield
                return
            self.db.execute("BEGIN IMMEDIATE")
            try:
                if fence is not None:
                    fence()
                yield
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.conn.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from None

    def sync_config(self, config: Config, now: datetime, *, checked_in: str | None = None) -> None:
        """Upsert objectives and KRs from config; mark the ones no longer there retired;
        record the config's period with the definitions it has now.

        `checked_in` (a check-in of that KR, which applies no config): add that KR and its
        objective, and the period, only where the store does not know them yet, and change
        nothing else, so `plan` still shows all that applying the config would."""
        stamp = to_text(now)
        objectives = [
            {
                "id": o.id,
                "title": o.title,
                "owner": o.owner,
                "parent": o.parent,
                "weight": o.weight,
                "retired_at": None,
                "updated_at": stamp,
            }
            for o in config.objectives
        ]
        krs = [
            {
                "id": k.id,
                "objective_id": o.id,
                "title": k.title,
                "source": "formula" if k.formula else k.source,
                "unit": k.unit,
                "start": k.start,
                "target": k.target,
                "weight": k.weight,
                "every": k.every,
                "definition": json.dumps(config.definition(k)),
                "retired_at": None,
                "updated_at": stamp,
            }
            for o, k in config.key_results()
        ]
        with self.transaction():
            if checked_in is not None:
                kr = [r for r in krs if r["id"] == checked_in]
                owner = [r for r in objectives if kr and r["id"] == kr[0]["objective_id"]]
                for table, rows in (("objectives", owner), ("key_results", kr)):
                    self.db.table(table).insert_all(rows, pk="id", ignore=True)
                self.know_period(config, now)
                return
            for table, rows in (("objectives", objectives), ("key_results", krs)):
                self.db.table(table).upsert_all(rows, pk="id")
                live = [r["id"] for r in rows]
                marks = ",".join("?" * len(live)) or "NULL"
                self.db.execute(
                    f"UPDATE {table} SET retired_at = ? WHERE retired_at IS NULL "
                    f"AND id NOT IN ({marks})",
                    [stamp, *live],
                )
            periods.record(self.db, from_config(config), now)

    def know_period(self, config: Config, now: datetime) -> None:
        """Record the config's period with its definitions, only if the store has not
        seen it yet (a backfill or check-in applies no config)."""
        with self.transaction():
            known = "SELECT 1 FROM periods WHERE name = ?"
            if self.db.execute(known, [config.period.name]).fetchone() is None:
                periods.record(self.db, from_config(config), now)

    def start_run(
        self, run_id: str, kind: str, started: datetime, digest: str, commit: str | None = None
    ) -> None:
        """`commit`: the git commit of the config directory (None outside a repository)."""
        self.db.table("runs").insert(
            {
                "id": run_id,
                "kind": kind,
                "started_at": to_text(started),
                "config_digest": digest,
                "config_commit": commit,
            }
        )

    def finish_run(self, run_id: str, finished: datetime, measured: int, failed: int) -> None:
        self.db.table("runs").update(
            run_id, {"finished_at": to_text(finished), "measured": measured, "failed": failed}
        )

    def record_run(
        self,
        run_id: str,
        kind: str,
        started: datetime,
        finished: datetime,
        digest: str,
        rows: list[Measurement],
        period: str,
        commit: str | None = None,
    ) -> list[int]:
        """One run and its measurements of `period` (call inside `transaction()`); the
        measurements' ids."""
        self.start_run(run_id, kind, started, digest, commit)
        ids = self.append(run_id, rows, period)
        self.finish_run(run_id, finished, len(rows), sum(r.error is not None for r in rows))
        return ids

    def append(self, run_id: str | None, rows: list[Measurement], period: str) -> list[int]:
        """Append measurements of `period` to the history (call inside `transaction()`);
        their ids, in order (the outbox refers to them)."""
        return [
            int(
                self.db.execute(
                    measurement_rows.INSERT, measurement_rows.row(run_id, r, period)
                ).lastrowid
                or 0
            )
            for r in rows
        ]

    def append_many(self, run_id: str | None, rows: list[Measurement], period: str) -> None:
        """`append` in one executemany, for bulk writes that need no ids (a backfill)."""
        self.db.conn.executemany(
            measurement_rows.INSERT, [measurement_rows.row(run_id, r, period) for r in rows]
        )

    @property
    def outbox(self) -> Outbox:
        """The deliveries to sinks, kept in this store."""
        return Outbox(self.db, self.path)

    def observations(
        self, kr_ids: list[str], now: datetime, period: Period
    ) -> dict[str, Observation]:
        """Latest value and latest attempt at or before `now` in `period`, per KR; while a
        manual override holds (a check-in with `until` after `now`), its value instead."""
        try:
            return provenance.observations(self.db, kr_ids, now, period)
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from None

    def history(
        self, kr_id: str, limit: int | None = None, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Measurements of a KR (at or before `until`, if given), newest first, every field."""
        return list(self.history_rows(kr_id, limit, until))

    def history_rows(
        self, kr_id: str, limit: int | None = None, until: datetime | None = None
    ) -> Iterator[dict[str, Any]]:
        """`history`, one row at a time (a history of 1,000,000 rows streams in constant
        memory); the store must stay open while it is read."""
        sql = "SELECT * FROM measurements WHERE kr_id = ?"
        params: list[Any] = [kr_id]
        if until is not None:
            sql += " AND measured_at <= ?"
            params.append(to_text(until))
        sql += " ORDER BY measured_at DESC, id DESC"
        if limit:
            sql += " LIMIT ?"
            params.append(limit)
        try:
            for r in self.db.query(sql, params):
                yield provenance.decoded(dict(r))
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from None

    def overridden(self, now: datetime) -> set[str]:
        """KRs with a manual override holding at `now` (see provenance.overridden)."""
        try:
            return provenance.overridden(self.db, now)
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from None

    def measurement(
        self,
        kr_id: str,
        at: datetime | None = None,
        *,
        automated: bool = False,
        valued: bool = False,
        period: Period | None = None,
    ) -> dict[str, Any] | None:
        """The latest measurement of a KR at or before `at` (`automated`: not a check-in;
        `valued`: with a value; of `period`, if given), with its run's kind, config digest
        and commit; LIMIT 1."""
        try:
            return provenance.latest(
                self.db, kr_id, at, automated=automated, valued=valued, period=period
            )
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from None

    def override(
        self, kr_id: str, at: datetime, period: Period | None = None
    ) -> dict[str, Any] | None:
        """The whole stored row of the override of `kr_id` holding at `at`, if one does."""
        try:
            held = provenance.holding(self.db, kr_id, at, period)
            return provenance.by_id(self.db, held["id"]) if held else None
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from None

    def periods(self) -> list[Period]:
        """Every period the store has seen, earliest first."""
        try:
            return periods.known(self.db)
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from None

    def definitions(self, name: str) -> Definitions | None:
        """A stored period and the definitions it was judged with (None: never seen)."""
        try:
            return periods.definitions(self.db, name)
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from None

    def final_values(self, kr_ids: list[str], period: Period, until: datetime) -> dict[str, float]:
        """Each KR's latest value in `period`, as known at `until`."""
        try:
            return periods.final_values(self.db, kr_ids, period, until)
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from None

    def applied(self) -> dict[str, Any]:
        """What the last run synced from its config: `key_results` and
        `objectives` rows by id (retired ones too; `definition` parsed) and the latest `run`."""
        try:
            krs = {r["id"]: dict(r) for r in self.db.query("SELECT * FROM key_results")}
            objectives = {r["id"]: dict(r) for r in self.db.query("SELECT * FROM objectives")}
            runs = list(self.db.query(_LAST_APPLIED))
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from None
        for row in krs.values():
            row["definition"] = json.loads(row["definition"]) if row.get("definition") else None
        return {"key_results": krs, "objectives": objectives, "run": runs[0] if runs else None}

    def known_kr(self, kr_id: str) -> dict[str, Any] | None:
        """The stored definition row of a KR (retired ones too), if any."""
        try:
            rows = list(self.db.query("SELECT * FROM key_results WHERE id = ?", [kr_id]))
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from None
        return dict(rows[0]) if rows else None

    def kr_ids(self) -> list[str]:
        """Every KR id the store knows (retired ones too), for 'did you mean'."""
        try:
            return [r["id"] for r in self.db.query("SELECT id FROM key_results ORDER BY id")]
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from None


__all__ = ["LOCK_TIMEOUT", "SCHEMA_VERSION", "Store"]
