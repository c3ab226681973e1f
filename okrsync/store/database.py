"""One connection to the store's database, whichever engine holds it: the SQL both
SQLite and PostgreSQL speak (`?` parameters, ON CONFLICT upserts, savepoints), with
each engine's differences behind a few methods. Every driver error leaves as a one-line
StoreError naming the store, never a password."""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol


class Cursor(Protocol):
    """What a DB-API cursor gives back that the store reads."""

    @property
    def rowcount(self) -> int: ...

    @property
    def description(self) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


def _names(columns: Iterable[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


class Database(ABC):
    """The store's connection; `where` names it in messages (a path, or a URL without
    its password)."""

    def __init__(self, where: str) -> None:
        self.where = where
        self._savepoints = itertools.count(1)

    @abstractmethod
    def errors(self) -> AbstractContextManager[None]:
        """Turns the driver's errors raised inside into StoreErrors."""

    @abstractmethod
    def _execute(self, sql: str, params: Sequence[Any]) -> Cursor: ...

    @abstractmethod
    def _executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    @abstractmethod
    def insert_id(self, sql: str, params: Sequence[Any]) -> int:
        """Run one INSERT into a table with an `id` key; the new row's id."""

    def insert_ids(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[int]:
        """`insert_id` for many rows; their ids, in order."""
        return [self.insert_id(sql, row) for row in rows]

    @abstractmethod
    def tables(self) -> set[str]: ...

    @abstractmethod
    def columns(self, table: str) -> set[str]: ...

    @property
    @abstractmethod
    def in_transaction(self) -> bool: ...

    @abstractmethod
    def begin(self) -> None:
        """Start a write transaction holding the store's one write lock, so writers take
        turns (waiting at most LOCK_TIMEOUT) as they do on SQLite."""

    @abstractmethod
    def close(self) -> None: ...

    snapshot_begin = "BEGIN"
    """Starts a transaction whose reads see one moment (SQLite: any, in WAL mode)."""

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside see one moment of the store, whatever others write meanwhile."""
        self.execute(self.snapshot_begin)
        try:
            yield
        finally:
            self.rollback()

    def clock(self, fallback: float) -> float:
        """Seconds since the epoch on the clock every replica shares: the database
        server's where there is one, else `fallback` (one host, one clock)."""
        return fallback

    def epoch(self, column: str) -> str:
        """SQL for a stored timestamp text `column` as Unix seconds."""
        return f"(julianday({column}) - 2440587.5) * 86400.0"

    def indexed_by(self, index: str) -> str:
        """An index hint where the engine takes one (SQLite); '' elsewhere."""
        return ""

    def bulk_writes(self) -> AbstractContextManager[None]:
        """Inside: many rows are written at once (a backfill); the engine may trade a
        little durability of the last moments before a crash for speed."""
        return _nothing()

    def skip_locked(self, table: str) -> str:
        """SQL after a SELECT that claims rows: on an engine with row locks, skip the rows
        another transaction holds (SQLite's one writer at a time needs none)."""
        return ""

    def reset_ids(self, table: str) -> None:
        """After rows were inserted with their own ids: new rows get ids after them
        (SQLite's INTEGER PRIMARY KEY does so by itself)."""
        return None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        with self.errors():
            return self._execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.errors():
            self._executemany(sql, rows)

    def query(self, sql: str, params: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
        """Rows as dicts, one at a time."""
        with self.errors():
            cursor = self._execute(sql, params)
            names = [d[0] for d in cursor.description]
            for row in cursor:
                yield dict(zip(names, row, strict=True))

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        if self.in_transaction:
            self.execute("ROLLBACK")

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction inside the current one."""
        name = f"okrsync_{next(self._savepoints)}"
        self.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.execute(f"ROLLBACK TO SAVEPOINT {name}")
            self.execute(f"RELEASE SAVEPOINT {name}")
            raise
        self.execute(f"RELEASE SAVEPOINT {name}")

    def insert(self, table: str, row: dict[str, Any]) -> None:
        marks = ", ".join("?" for _ in row)
        self.execute(f"INSERT INTO {table} ({_names(row)}) VALUES ({marks})", list(row.values()))

    def insert_all(
        self, table: str, rows: Iterable[dict[str, Any]], *, ignore: bool = False
    ) -> None:
        """Insert rows (all with the same keys); `ignore`: skip those whose key exists."""
        rows = list(rows)
        if not rows:
            return
        marks = ", ".join("?" for _ in rows[0])
        sql = f"INSERT INTO {table} ({_names(rows[0])}) VALUES ({marks})"
        if ignore:
            sql += " ON CONFLICT DO NOTHING"
        self.executemany(sql, [list(r.values()) for r in rows])

    def upsert_all(self, table: str, rows: Iterable[dict[str, Any]], key: str) -> None:
        """Insert rows, or update every other column of the ones whose `key` exists."""
        rows = list(rows)
        if not rows:
            return
        names = list(rows[0])
        marks = ", ".join("?" for _ in names)
        sets = ", ".join(f'"{c}" = excluded."{c}"' for c in names if c != key)
        self.executemany(
            f"INSERT INTO {table} ({_names(names)}) VALUES ({marks}) "
            f'ON CONFLICT ("{key}") DO UPDATE SET {sets}',
            [list(r.values()) for r in rows],
        )

    def update(self, table: str, key: str, value: Any, fields: dict[str, Any]) -> None:
        sets = ", ".join(f'"{c}" = ?' for c in fields)
        self.execute(f'UPDATE {table} SET {sets} WHERE "{key}" = ?', [*fields.values(), value])


@contextmanager
def _nothing() -> Iterator[None]:
    yield
