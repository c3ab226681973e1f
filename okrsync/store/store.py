"""The OKR store: what okrsync keeps and reads, the same on SQLite and PostgreSQL.

Objectives and KRs are synced from config (removed ones marked retired, history kept);
measurements are an append-only history. Each run writes in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from okrsync.config.loader import Config
from okrsync.config.model import Period
from okrsync.measure.measurement import Measurement
from okrsync.progress.definitions import Definitions, from_config
from okrsync.progress.maths import Observation
from okrsync.store import periods, provenance
from okrsync.store import rows as measurement_rows
from okrsync.store.database import Database
from okrsync.store.errors import LOCK_TIMEOUT
from okrsync.store.location import StoreUrl, parse
from okrsync.store.outbox import Outbox
from okrsync.store.schema import SCHEMA_VERSION
from okrsync.store.sqlite import SqliteDatabase
from okrsync.timefmt import to_text

_LAST_APPLIED = (  # a backfill applies no config: plan compares with the run before it
    "SELECT * FROM runs WHERE kind != 'backfill' ORDER BY started_at DESC LIMIT 1"
)


class Store:
    """An open OKR store, in SQLite or PostgreSQL; every database error leaves here as a
    one-line StoreError naming the store (never its password)."""

    def __init__(self, location: StoreUrl | Path | str, *, create: bool = True) -> None:
        """Open (and, unless `create` is False, create or migrate) the store at `location`:
        a SQLite path or a `--db` URL (see `okrsync.store.location`).

        `create=False` is for commands that only read: nothing is written or migrated; a
        missing or empty database reads as an empty store.
        """
        url = location if isinstance(location, StoreUrl) else parse(location)
        self.url = url
        self.path = str(url)
        self.db: Database
        if url.kind == "sqlite":
            self.db = SqliteDatabase(url.path, create=create)
        else:
            from okrsync.store.postgres import open_postgres

            self.db = open_postgres(url, create=create)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self, fence: Callable[[], None] | None = None) -> Iterator[None]:
        """All writes inside commit together or not at all, under the store's one write
        lock (`Database.begin`); inner levels are savepoints. `fence` runs first, under
        that lock: it raises to refuse the writes (a replica whose leader lease has
        lapsed), and nothing is written.
        """
        if self.db.in_transaction:
            with self.db.savepoint():
                yield
            return
        self.db.begin()
        try:
            with self.db.errors():
                if fence is not None:
                    fence()
                yield
            self.db.commit()
        except BaseException:
            self.db.rollback()
            raise

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
                    self.db.insert_all(table, rows, ignore=True)
                self.know_period(config, now)
                return
            for table, rows in (("objectives", objectives), ("key_results", krs)):
                self.db.upsert_all(table, rows, key="id")
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
        self.db.insert(
            "runs",
            {
                "id": run_id,
                "kind": kind,
                "started_at": to_text(started),
                "config_digest": digest,
                "config_commit": commit,
            },
        )

    def finish_run(self, run_id: str, finished: datetime, measured: int, failed: int) -> None:
        self.db.update(
            "runs",
            "id",
            run_id,
            {"finished_at": to_text(finished), "measured": measured, "failed": failed},
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
        return self.db.insert_ids(
            measurement_rows.INSERT, [measurement_rows.row(run_id, r, period) for r in rows]
        )

    def append_many(self, run_id: str | None, rows: list[Measurement], period: str) -> None:
        """`append` in one executemany, for bulk writes that need no ids (a backfill)."""
        self.db.executemany(
            measurement_rows.INSERT, [measurement_rows.row(run_id, r, period) for r in rows]
        )

    @property
    def outbox(self) -> Outbox:
        """The deliveries to sinks, kept in this store."""
        return Outbox(self.db)

    def observations(
        self, kr_ids: list[str], now: datetime, period: Period
    ) -> dict[str, Observation]:
        """Latest value and latest attempt at or before `now` in `period`, per KR; while a
        manual override holds (a check-in with `until` after `now`), its value instead."""
        return provenance.observations(self.db, kr_ids, now, period)

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
        for r in self.db.query(sql, params):
            yield provenance.decoded(dict(r))

    def overridden(self, now: datetime) -> set[str]:
        """KRs with a manual override holding at `now` (see provenance.overridden)."""
        return provenance.overridden(self.db, now)

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
        return provenance.latest(
            self.db, kr_id, at, automated=automated, valued=valued, period=period
        )

    def override(
        self, kr_id: str, at: datetime, period: Period | None = None
    ) -> dict[str, Any] | None:
        """The whole stored row of the override of `kr_id` holding at `at`, if one does."""
        held = provenance.holding(self.db, kr_id, at, period)
        return provenance.by_id(self.db, held["id"]) if held else None

    def periods(self) -> list[Period]:
        """Every period the store has seen, earliest first."""
        return periods.known(self.db)

    def definitions(self, name: str) -> Definitions | None:
        """A stored period and the definitions it was judged with (None: never seen)."""
        return periods.definitions(self.db, name)

    def final_values(self, kr_ids: list[str], period: Period, until: datetime) -> dict[str, float]:
        """Each KR's latest value in `period`, as known at `until`."""
        return periods.final_values(self.db, kr_ids, period, until)

    def applied(self) -> dict[str, Any]:
        """What the last run synced from its config: `key_results` and
        `objectives` rows by id (retired ones too; `definition` parsed) and the latest `run`."""
        krs = {r["id"]: dict(r) for r in self.db.query("SELECT * FROM key_results")}
        objectives = {r["id"]: dict(r) for r in self.db.query("SELECT * FROM objectives")}
        runs = list(self.db.query(_LAST_APPLIED))
        for row in krs.values():
            row["definition"] = json.loads(row["definition"]) if row.get("definition") else None
        return {"key_results": krs, "objectives": objectives, "run": runs[0] if runs else None}

    def known_kr(self, kr_id: str) -> dict[str, Any] | None:
        """The stored definition row of a KR (retired ones too), if any."""
        rows = list(self.db.query("SELECT * FROM key_results WHERE id = ?", [kr_id]))
        return dict(rows[0]) if rows else None

    def kr_ids(self) -> list[str]:
        """Every KR id the store knows (retired ones too), for 'did you mean'."""
        return [r["id"] for r in self.db.query("SELECT id FROM key_results ORDER BY id")]


__all__ = ["LOCK_TIMEOUT", "SCHEMA_VERSION", "Store"]
