"""sqlite's errors as one-line StoreErrors that say what to do."""

from __future__ import annotations

import sqlite3

from okrsync.errors import StoreError

LOCK_TIMEOUT = 5.0


def store_error(path: str, exc: sqlite3.Error) -> StoreError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return StoreError(
            f"{path}: the database is locked by another process "
            f"(waited {LOCK_TIMEOUT:g}s); try again when it finishes"
        )
    if "readonly" in text or "read-only" in text:
        return StoreError(
            f"{path}: the database is read-only: check the file's and "
            "directory's permissions, or point --db / OKRSYNC_DB elsewhere"
        )
    if "not a database" in text or "malformed" in text:
        return StoreError(f"{path}: not an okrsync database, or it is damaged ({text})")
    if "unable to open" in text:
        return StoreError(
            f"{path}: cannot open the database file (does its directory exist and is it writable?)"
        )
    return StoreError(f"{path}: database error: {text}")


def check_version(where: str, version: int, known: int) -> None:
    """Refuse a store written by a newer okrsync."""
    if version > known:
        raise StoreError(
            f"{where}: the database has schema version {version}, newer than this "
            f"okrsync understands ({known}); upgrade okrsync"
        )


def check_tables(where: str, problem: str | None) -> None:
    """Refuse a store whose tables are not okrsync's (`problem`: what is missing)."""
    if problem:
        raise StoreError(
            f"{where}: its tables do not match okrsync's schema ({problem}); nothing was changed"
        )
