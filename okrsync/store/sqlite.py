"""The store in a SQLite file (the embedded default), through sqlite-utils: WAL mode,
schema version in `PRAGMA user_version`, BEGIN IMMEDIATE as the write lock."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from okrsync.errors import StoreError
from okrsync.store import errors
from okrsync.store.database import Cursor, Database
from okrsync.store.schema import MIGRATIONS, SCHEMA_VERSION, mismatch, not_okrsync


class SqliteDatabase(Database):
    """A SQLite file (or `:memory:`) holding an okrsync store."""

    def __init__(self, path: str, *, create: bool = True) -> None:
        """Open (and, unless `create` is False, create or migrate) the store at `path`.

        `create=False` is for commands that only read: the file is opened read-only and
        never written or migrated; a missing or empty file reads as an empty store.
        """
        super().__init__(path)
        file = Path(path)
        memory = path == ":memory:" or (
            not create and (not file.exists() or (file.is_file() and file.stat().st_size == 0))
        )
        try:
            if memory:
                target, uri = ":memory:", False
            elif create:
                file.parent.mkdir(parents=True, exist_ok=True)
                target, uri = path, False
            else:
                target, uri = f"{file.resolve().as_uri()}?mode=ro", True
            conn = sqlite3.connect(
                target,
                timeout=errors.LOCK_TIMEOUT,
                isolation_level=None,
                check_same_thread=False,
                uri=uri,
            )
            self.db = sqlite_utils.Database(conn)
            self._open(writable=create or memory)
        except sqlite3.Error as exc:
            raise errors.store_error(path, exc) from None
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the database: {exc.strerror}") from None

    def _open(self, *, writable: bool) -> None:
        """Check the schema is okrsync's; create or migrate it only when allowed to write."""
        version = int(self.db.execute("PRAGMA user_version").fetchone()[0])
        errors.check_version(self.where, version, SCHEMA_VERSION)
        tables = self.tables()
        if version == 0 and (tables or not writable):
            raise not_okrsync(self.where, tables)
        if version > 0:
            errors.check_tables(self.where, mismatch(self, version))
        if version == SCHEMA_VERSION:
            return
        if not writable:
            self._migrated_copy()
        elif self.where != ":memory:":
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

    @contextmanager
    def errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise errors.store_error(self.where, exc) from None

    def _execute(self, sql: str, params: Sequence[Any]) -> Cursor:
        return self.db.conn.execute(sql, params)

    def _executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.db.conn.executemany(sql, rows)

    def insert_id(self, sql: str, params: Sequence[Any]) -> int:
        with self.errors():
            return int(self.db.conn.execute(sql, params).lastrowid or 0)

    def tables(self) -> set[str]:
        with self.errors():
            return set(self.db.table_names())

    def columns(self, table: str) -> set[str]:
        with self.errors():
            return set(self.db[table].columns_dict)

    @property
    def in_transaction(self) -> bool:
        return self.db.conn.in_transaction

    def begin(self) -> None:
        """BEGIN IMMEDIATE takes the write lock up front, so a writer busy elsewhere (the
        daemon, a checkin) is waited for up to LOCK_TIMEOUT instead of failing at once on
        a read-to-write upgrade."""
        self.execute("BEGIN IMMEDIATE")

    def close(self) -> None:
        self.db.close()

    def indexed_by(self, index: str) -> str:
        return f"INDEXED BY {index}"

    @contextmanager
    def bulk_writes(self) -> Iterator[None]:
        """`synchronous = NORMAL` in WAL mode: still consistent after a crash, but the
        last commits may be lost on a power cut; they are re-measured."""
        before = int(self.execute("PRAGMA synchronous").fetchone()[0])
        self.execute("PRAGMA synchronous = NORMAL")
        try:
            yield
        finally:
            self.execute(f"PRAGMA synchronous = {before}")
