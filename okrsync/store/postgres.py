"""The store in a PostgreSQL database, through psycopg 3 (the `okrsync[postgres]` extra).

Writers take turns on one transaction-scoped advisory lock, as they do on SQLite's write
lock, so a run's semantics are the same on both. Every wait is bounded: connecting
(CONNECT_TIMEOUT), locks (LOCK_TIMEOUT), a session left idle inside a transaction (a
paused process's: the server ends it), and a silent server (TCP keepalives).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from okrsync.errors import StoreError
from okrsync.secrets import redact
from okrsync.store import pg_schema
from okrsync.store.database import Cursor, Database
from okrsync.store.errors import LOCK_TIMEOUT, check_tables, check_version
from okrsync.store.location import StoreUrl, StoreUrlError
from okrsync.store.schema import SCHEMA_VERSION, mismatch, not_okrsync

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT = 5
IDLE_IN_TRANSACTION = 15.0
FETCH_BATCH = 2000
WRITE_LOCK = 0x6F6B7273  # "okrs": the one advisory lock writers take in turn
STATEMENT_TIMEOUT = 300.0  # generous: a bound, not a budget (the longest is a big copy)
TCP_USER_TIMEOUT = 30.0  # unacknowledged data to a vanished server, where keepalives wait
_REFUSED = (  # libpq's words for a server that answers but will not have us: exit 3
    "password",
    "authentication",
    "does not exist",  # the database or the role
    "pg_hba.conf",
    "permission denied",
    "ssl was required",
    "does not support ssl",
    "certificate",
    "invalid",
)


class ConnectError(StoreError):
    """The server could not be reached or refused us; `retryable`: it may come back."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def open_postgres(url: StoreUrl, *, create: bool) -> Database:
    """The store at `url`; a database with no okrsync schema read without `create` is an
    empty store (in memory), as a missing SQLite file is."""
    db = PostgresDatabase(url, create=create)
    if not create and not db.tables():
        db.close()
        from okrsync.store.sqlite import SqliteDatabase

        return SqliteDatabase(":memory:")
    db.check(writable=create)
    return db


class PostgresDatabase(Database):
    """One psycopg connection (autocommit; transactions are explicit, as on SQLite)."""

    snapshot_begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

    def __init__(self, url: StoreUrl, *, create: bool = True) -> None:
        super().__init__(str(url))
        self.url = url
        self.read_only = not create
        try:
            import psycopg
            from psycopg import conninfo
        except ImportError:
            raise StoreError(
                f"{self.where}: a PostgreSQL store needs the psycopg driver: "
                "pip install 'okrsync[postgres]'"
            ) from None
        self.psycopg = psycopg
        try:
            self.params = conninfo.conninfo_to_dict(url.url)
        except psycopg.ProgrammingError as exc:
            raise StoreUrlError(f"--db {self.where}: malformed PostgreSQL URL ({exc})") from None
        self._cursors = itertools.count(1)
        self.conn = self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        settings = {
            "lock_timeout": f"{int(LOCK_TIMEOUT * 1000)}ms",
            "statement_timeout": f"{int(STATEMENT_TIMEOUT * 1000)}ms",
            "idle_in_transaction_session_timeout": f"{int(IDLE_IN_TRANSACTION * 1000)}ms",
            "TimeZone": "UTC",
        }
        if self.read_only:
            settings["default_transaction_read_only"] = "on"
        options = " ".join(f"-c {k}={v}" for k, v in settings.items())
        params: dict[str, Any] = {
            **self.params,
            "options": f"{self.params.get('options', '')} {options}".strip(),
            "connect_timeout": self.params.get("connect_timeout", CONNECT_TIMEOUT),
            "application_name": self.params.get("application_name", "okrsync"),
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "tcp_user_timeout": int(TCP_USER_TIMEOUT * 1000),
        }
        if self.url.password is not None:
            params["password"] = self.url.password
        try:
            return self.psycopg.connect(autocommit=True, **params)
        except self.psycopg.Error as exc:
            raise self._connect_error(exc) from None

    def _connect_error(self, exc: Exception) -> ConnectError:
        """One line: host, port, database and libpq's reason, never the password; not
        retryable when the server answered and refused (psycopg gives no SQLSTATE here,
        so libpq's words tell), retryable when it could not be reached or was starting."""
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = (lines[0] if lines else type(exc).__name__).rsplit(" failed: ", 1)[-1]
        reason = reason.removeprefix("FATAL:").strip()
        u = self.url
        return ConnectError(
            redact(
                f"{self.where}: cannot connect to PostgreSQL (host {u.host}, port {u.port}, "
                f"database {u.database}): {reason}"
            ),
            retryable=not any(word in reason.lower() for word in _REFUSED),
        )

    def check(self, *, writable: bool) -> None:
        """Check the schema is okrsync's; create or migrate it only when allowed to write."""
        tables = self.tables()
        if pg_schema.VERSION_TABLE_NAME not in tables:
            if tables:
                raise not_okrsync(self.where, tables)
            self.begin()  # a second replica starting at once waits, then finds the schema
            try:
                if pg_schema.VERSION_TABLE_NAME not in self.tables():
                    pg_schema.create(self)
                self.commit()
            except BaseException:
                self.rollback()
                raise
        version = pg_schema.version(self)
        check_version(self.where, version, SCHEMA_VERSION)
        check_tables(self.where, mismatch(self, version))
        if version < SCHEMA_VERSION:
            if not writable:
                raise StoreError(
                    f"{self.where}: the store has schema version {version}; a command that "
                    "writes (sync, run) migrates it first"
                )
            self.begin()
            try:
                pg_schema.migrate(self, pg_schema.version(self))
                self.commit()
            except BaseException:
                self.rollback()
                raise

    @contextmanager
    def errors(self) -> Iterator[None]:
        try:
            yield
        except self.psycopg.Error as exc:
            raise self._error(exc) from None

    def _error(self, exc: Exception) -> StoreError:
        state = getattr(exc, "sqlstate", None)
        diag = getattr(exc, "diag", None)
        text = (getattr(diag, "message_primary", None) or str(exc)).strip().splitlines()[0]
        if state == "55P03":
            message = (
                f"{self.where}: the database is locked by another process "
                f"(waited {LOCK_TIMEOUT:g}s); try again when it finishes"
            )
        elif state == "25006":
            message = f"{self.where}: the store was opened read-only and cannot be written"
        elif self.conn.broken or isinstance(exc, self.psycopg.OperationalError):
            message = f"{self.where}: lost the connection to PostgreSQL: {text}"
        else:
            message = f"{self.where}: database error: {text}"
        return StoreError(redact(message))

    def _live(self) -> psycopg.Connection[Any]:
        """The connection, made again first if it broke while no transaction was open."""
        if (self.conn.broken or self.conn.closed) and not self.in_transaction:
            self.conn = self._connect()
        return self.conn

    @staticmethod
    def _sql(sql: str, params: Sequence[Any]) -> str:
        return sql.replace("%", "%%").replace("?", "%s") if params else sql

    def _execute(self, sql: str, params: Sequence[Any]) -> Cursor:
        return self._live().execute(self._sql(sql, params), list(params) or None)

    def _executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        batch = [list(r) for r in rows]
        if batch:
            with self._live().cursor() as cursor:
                cursor.executemany(self._sql(sql, batch[0]), batch)

    def query(self, sql: str, params: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
        """Rows fetched in batches through a server-side cursor: a million-row history in
        constant memory, and other statements may run on the connection in between."""
        with self.errors():
            name = f"okrsync_{next(self._cursors)}"
            with self._live().cursor(name=name, withhold=True) as cursor:
                cursor.itersize = FETCH_BATCH
                cursor.execute(self._sql(sql, params), list(params) or None)
                names = [d.name for d in cursor.description or ()]
                for row in cursor:
                    yield dict(zip(names, row, strict=True))

    def insert_id(self, sql: str, params: Sequence[Any]) -> int:
        row = self.execute(f"{sql} RETURNING id", params).fetchone()
        return int(row[0])

    def insert_ids(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[int]:
        """All in one pipeline, not one round trip per row (a 1,000-KR run's append)."""
        if not rows:
            return []
        ids: list[int] = []
        with self.errors(), self._live().cursor() as cursor:
            query = self._sql(f"{sql} RETURNING id", rows[0])
            cursor.executemany(query, [list(r) for r in rows], returning=True)
            while True:
                row = cursor.fetchone()
                ids.append(int(row[0]) if row else 0)
                if not cursor.nextset():
                    break
        return ids

    def tables(self) -> set[str]:
        rows = self.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchall()
        return {str(r[0]) for r in rows}

    def columns(self, table: str) -> set[str]:
        rows = self.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ?",
            [table],
        ).fetchall()
        return {str(r[0]) for r in rows}

    @property
    def in_transaction(self) -> bool:
        """False on a lost connection: its transaction is gone with it, and the next
        statement connects again (a server restart does not end a daemon's store)."""
        if self.conn.broken or self.conn.closed:
            return False
        status = self.conn.info.transaction_status
        return bool(status != self.psycopg.pq.TransactionStatus.IDLE)

    def begin(self) -> None:
        """BEGIN, then the write lock; a lock not had within LOCK_TIMEOUT ends the
        transaction again, so the connection is ready for the next try."""
        self.execute("BEGIN")
        try:
            self.execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")
        except BaseException:
            self.rollback()
            raise

    def close(self) -> None:
        self.conn.close()

    def clock(self, fallback: float) -> float:
        """The server's clock: replicas on several hosts agree on when a lease expires."""
        return float(self.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()[0])

    def skip_locked(self, table: str) -> str:
        return f" FOR UPDATE OF {table} SKIP LOCKED"

    def reset_ids(self, table: str) -> None:
        """Move the table's identity sequence past the ids copied in."""
        if "id" not in self.columns(table):
            return
        sequence = self.execute("SELECT pg_get_serial_sequence(?, 'id')", [f'"{table}"']).fetchone()
        if sequence[0] is not None:  # an identity column (not a text id)
            self.execute(
                f'SELECT setval(?, coalesce(max("id"), 0) + 1, false) FROM "{table}"', [sequence[0]]
            )

    def epoch(self, column: str) -> str:
        return f"extract(epoch FROM CAST({column} AS timestamptz))::float8"
