"""`okrsync store copy`: a whole store into an empty one, SQLite or PostgreSQL either way.

The target's schema is created (or migrated) first; then every row is copied in one
transaction of the target, so an interrupted copy leaves it empty and can be run again;
row counts are checked table by table before that transaction commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from okrsync.errors import StoreError, UsageError
from okrsync.store.store import Store

BATCH = 5000
BOOKKEEPING = {"schema_version"}
"""Tables each store writes for itself as it is created, never copied."""
ORDER = ("objectives", "key_results", "periods", "runs", "measurements", "deliveries")
"""These first, in this order (a row before the rows that name it); any others after."""

Progress = Callable[[str, int, int, int], None]
"""(table, rows of it copied, rows copied in all, rows to copy in all)."""


@dataclass(frozen=True)
class Copied:
    """One table: the rows in the source and, after the copy, in the target."""

    table: str
    source: int
    target: int


def tables(store: Store) -> list[str]:
    """The store's own tables, in copying order."""
    present = store.db.tables() - BOOKKEEPING
    return [t for t in ORDER if t in present] + sorted(present - set(ORDER))


def count(store: Store, table: str) -> int:
    return int(store.db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])


def refuse_unless_empty(target: Store) -> None:
    """A target holding any okrsync row is refused: a copy never makes duplicates."""
    held = {t: n for t in tables(target) if (n := count(target, t))}
    if held:
        rows = ", ".join(f"{n} {t}" for t, n in held.items())
        raise UsageError(
            f"{target.path} already holds okrsync rows ({rows}): store copy only fills an "
            "empty store; nothing was copied"
        )


def copy(source: Store, target: Store, progress: Progress | None = None) -> list[Copied]:
    """Copy every row of `source` (as of one moment: a daemon may go on writing to it)
    into the empty `target` in one target transaction."""
    with source.db.snapshot():
        return _copy(source, target, progress)


def _copy(source: Store, target: Store, progress: Progress | None) -> list[Copied]:
    refuse_unless_empty(target)
    names = tables(source)
    missing = [t for t in names if t not in target.db.tables()]
    if missing:
        raise StoreError(f"{target.path}: has no table {', '.join(missing)}")
    counts = {t: count(source, t) for t in names}
    total, done = sum(counts.values()), 0
    with target.db.bulk_writes(), target.transaction():
        for table in names:
            columns = sorted(source.db.columns(table) & target.db.columns(table))
            marks = ", ".join("?" for _ in columns)
            quoted = ", ".join(f'"{c}"' for c in columns)
            insert = f'INSERT INTO "{table}" ({quoted}) VALUES ({marks})'
            copied = 0
            for batch in _batches(source.db.query(f'SELECT {quoted} FROM "{table}"')):
                target.db.executemany(insert, [[row[c] for c in columns] for row in batch])
                copied, done = copied + len(batch), done + len(batch)
                if progress:
                    progress(table, copied, done, total)
            target.db.reset_ids(table)
        result = [Copied(t, counts[t], count(target, t)) for t in names]
        wrong = [c for c in result if c.source != c.target]
        if wrong:  # raising rolls the whole copy back
            differ = ", ".join(f"{c.table}: {c.source} in the source, {c.target}" for c in wrong)
            raise StoreError(f"{target.path}: row counts differ ({differ}); nothing was kept")
    return result


def _batches(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
