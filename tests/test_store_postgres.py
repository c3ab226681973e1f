"""The store on PostgreSQL: the URL, the password's sources, one-line errors with exit
codes, the schema and its version, and every command run end to end on both backends."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import responses
from clock import pin_cli_clock
from postgres_server import PASSWORD, PostgresServer
from prometheus_server import free_port

from okrsync.cli.main import main
from okrsync.errors import StoreError, UsageError
from okrsync.store.location import parse
from okrsync.store.schema import SCHEMA_VERSION
from okrsync.store.sqlite import SqliteDatabase
from okrsync.store.store import Store

CONFIG = """\
period: {name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}
sources:
  prom: {type: prometheus, url: "http://127.0.0.1:9"}
sinks:
  hook: {type: webhook, url: "http://127.0.0.1:9/hook"}
objectives:
  - id: reliability
    title: Reliable
    key_results:
      - {id: postmortems, source: manual, start: 0, target: 10, push: [hook]}
      - {id: uptime, source: prom, query: up, start: 99, target: 99.9, unit: "%"}
"""
ANSWER = {"status": "success", "data": {"resultType": "scalar", "result": [1.7e9, "99.5"]}}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_urls_name_the_backend_and_never_show_a_password() -> None:
    """Paths and sqlite:/// URLs are SQLite; a postgresql:// URL keeps its password out of
    what it shows; a malformed one is a usage error."""
    assert parse("data/okrsync.db").path == "data/okrsync.db"
    assert parse("sqlite:///rel/x.db").path == "rel/x.db"
    assert parse("sqlite:////abs/x.db").path == "/abs/x.db"
    url = parse("postgresql://me:hunter2-pw@db.example:6543/okr", {})
    assert (url.kind, url.host, url.port, url.database, url.user) == (
        "postgres",
        "db.example",
        6543,
        "okr",
        "me",
    )
    assert url.password == "hunter2-pw" and "hunter2" not in str(url) + url.url + repr(url)
    assert parse("postgresql://me:in-url@h/okr", {"OKRSYNC_DB_PASSWORD": "env"}).password == "env"
    query = parse("postgresql://me@h/okr?sslmode=require&password=q-secret", {})
    assert query.password == "q-secret" and query.url == "postgresql://me@h/okr?sslmode=require"
    for bad in ("postgresql://me@h:notaport/okr", "mysql://h/okr", "sqlite://rel", ""):
        with pytest.raises(UsageError):
            parse(bad, {})


def test_the_schema_and_its_version_match_sqlite(postgres_url: str, tmp_path: Path) -> None:
    """Same tables and columns as SQLite; the version is in a schema_version table."""
    pg, lite = Store(postgres_url), Store(tmp_path / "x.db")
    try:
        assert pg.db.execute("SELECT max(version) FROM schema_version").fetchone()[0] == (
            SCHEMA_VERSION
        )
        assert pg.db.tables() - {"schema_version"} == lite.db.tables()
        for table in lite.db.tables():
            assert pg.db.columns(table) == lite.db.columns(table), table
    finally:
        pg.close()
        lite.close()


def test_a_newer_or_foreign_database_is_refused(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    """A store written by a newer okrsync, or a database holding other tables, is refused
    with one line; nothing is changed."""
    Store(postgres_url).close()
    name = postgres_url.rsplit("/", 1)[1]
    postgres_server.psql(f"INSERT INTO schema_version VALUES ({SCHEMA_VERSION + 1}, now())", name)
    with pytest.raises(StoreError, match=rf"schema version {SCHEMA_VERSION + 1}, newer"):
        Store(postgres_url)
    other = postgres_server.database()
    postgres_server.psql("CREATE TABLE invoices (id int)", other.rsplit("/", 1)[1])
    with pytest.raises(StoreError, match=r"not an okrsync store.*invoices"):
        Store(other)
    assert postgres_server.tables(other) == 1


def test_a_store_of_an_older_schema_is_migrated_by_the_first_write(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    """A PostgreSQL store at the baseline schema: read as it is, migrated by a write, each
    version applied recorded in schema_version."""
    from okrsync.store import pg_schema

    name = postgres_url.rsplit("/", 1)[1]
    statements = [*pg_schema.create_statements(), pg_schema.VERSION_TABLE]
    statements.append(f"INSERT INTO schema_version (version) VALUES ({pg_schema.BASELINE})")
    postgres_server.psql("; ".join(statements), name)
    with pytest.raises(StoreError, match="a command that writes"):
        Store(postgres_url, create=False)
    Store(postgres_url).close()
    versions = postgres_server.psql("SELECT version FROM schema_version ORDER BY 1", name)
    assert [int(v) for v in versions.split()] == list(range(pg_schema.BASELINE, SCHEMA_VERSION + 1))
    assert "claimed_by" in postgres_server.psql(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'deliveries'", name
    )


def test_a_read_of_an_empty_database_creates_nothing(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    """status on a database okrsync never wrote reads as an empty store; no table appears."""
    store = Store(postgres_url, create=False)
    assert isinstance(store.db, SqliteDatabase) and store.kr_ids() == []
    store.close()
    assert postgres_server.tables(postgres_url) == 0


def test_refused_credentials_are_exit_3_on_one_line_without_the_password(
    postgres_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong password, an unknown database and an unreachable server: exit 3, one line
    naming host, port and database with libpq's reason, never a password."""
    wrong = "wrong-Pass-9c1d"
    monkeypatch.setenv("OKRSYNC_DB_PASSWORD", wrong)
    code, out, err = run(capsys, "status", "--db", postgres_url)
    assert code == 3 and len(err.strip().splitlines()) == 1, err
    assert "host 127.0.0.1" in err and "password authentication failed" in err
    assert wrong not in out + err and PASSWORD not in out + err
    monkeypatch.setenv("OKRSYNC_DB_PASSWORD", PASSWORD)
    code, _, err = run(capsys, "status", "--db", postgres_url.rsplit("/", 1)[0] + "/nodb")
    assert code == 3 and "database nodb" in err and 'database "nodb" does not exist' in err
    port = free_port()
    code, _, err = run(capsys, "status", "--db", f"postgresql://okrsync@127.0.0.1:{port}/x")
    assert code == 3 and f"port {port}" in err and "refused" in err.lower()
    assert len(err.strip().splitlines()) == 1 and PASSWORD not in err


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://me:pw-in-url@h:port/okr",
        "postgresql://me:pw/in-url@h/okr",
        "postgresql://me:pw#in-url@h/okr",
        "postgresql://me:12/pw-in-url@h",
    ],
)
def test_a_malformed_url_is_exit_2_without_its_password(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "status", "--db", url)
    assert code == 2 and "--db postgresql://…@" in err, err
    assert "pw" not in out + err.replace("password", "")


def test_okrsync_db_password_wins_over_libpq_and_the_url(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OKRSYNC_DB_PASSWORD(_FILE) beats PGPASSWORD and the URL's; the URL's alone works."""
    monkeypatch.setenv("PGPASSWORD", "libpq-wrong")
    with_wrong = postgres_url.replace("okrsync@", "okrsync:url-wrong@")
    Store(with_wrong).close()  # OKRSYNC_DB_PASSWORD (set by the fixture) wins
    monkeypatch.delenv("OKRSYNC_DB_PASSWORD")
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    monkeypatch.setenv("OKRSYNC_DB_PASSWORD_FILE", str(secret))
    Store(with_wrong).close()
    monkeypatch.delenv("OKRSYNC_DB_PASSWORD_FILE")
    Store(postgres_url.replace("okrsync@", f"okrsync:{PASSWORD}@")).close()
    with pytest.raises(StoreError, match="password authentication failed") as refused:
        Store(with_wrong)
    assert "url-wrong" not in str(refused.value)


def test_every_command_gives_the_same_answers_on_both_stores(
    tmp_path: Path,
    postgres_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """checkin, sync, status, history, plan, apply, explain, deliveries, grade and report,
    run against a SQLite file and a PostgreSQL database, print the same (store name aside)."""
    pin_cli_clock(monkeypatch)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "okrs.yaml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    outputs = {}
    for db in (str(tmp_path / "okrsync.db"), postgres_url):
        monkeypatch.setenv("OKRSYNC_DB", db)
        seen = []
        steps = [
            ("checkin", "postmortems", "4", "--note", "Nov", "--now", "2026-11-15"),
            ("sync", "--once"),
            ("status", "--json", "--now", "2026-11-16T01:00:00Z"),
            ("history", "uptime", "--json"),
            ("plan", "--json", "--now", "2026-11-17T00:00:00Z"),
            ("apply", "--now", "2026-11-17T00:00:00Z"),
            ("explain", "uptime", "--json"),
            ("deliveries", "--json"),
            ("grade", "--period", "2026-Q4", "--json"),
            ("report", "--html", str(tmp_path / "report.html"), "--now", "2026-11-18T00:00:00Z"),
        ]
        for argv in steps:
            with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
                rsps.add(responses.GET, "http://127.0.0.1:9/api/v1/query", json=ANSWER)
                code, out, err = run(capsys, *argv)
            assert code in (0, 2, 4) and "Traceback" not in err, (db, argv, out, err)
            seen.append(f"{code} " + _neutral(out.replace(Store(db, create=False).path, "STORE")))
        seen.append(_neutral((tmp_path / "report.html").read_text()))
        outputs[db] = seen
    lite, pg = outputs.values()
    for argv, a, b in zip(steps, lite, pg, strict=False):
        assert a == b, argv


def _neutral(text: str) -> str:
    """Run ids, idempotency keys and fetch timings differ run to run: leave them out."""
    text = re.sub(r'"(run_id|id|idempotency_key)": "[0-9a-f]{8,}"', r'"\1": "*"', text)
    text = re.sub(r'"(fetched_at|next_attempt_at)": "[^"]*"', r'"\1": "*"', text)
    return re.sub(r'"duration_s": [0-9.e-]+', '"duration_s": 0', text)


def test_a_lost_connection_fails_one_write_and_the_next_connects_again(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    """The server ends the session (a restart, a failover of the database): the write in
    progress fails with one line and is not stored; the next one reconnects and lands."""
    from datetime import UTC, datetime

    from okrsync.measure.measurement import Measurement

    store = Store(postgres_url)
    at = datetime(2026, 11, 15, tzinfo=UTC)
    name = postgres_url.rsplit("/", 1)[1]
    with pytest.raises(StoreError, match="lost the connection"), store.transaction():
        store.append("r", [Measurement("a", at, "s", "q", 1.0)], "Q")
        postgres_server.psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
        store.append("r", [Measurement("a", at, "s", "q", 2.0)], "Q")
    with store.transaction():
        store.append("r", [Measurement("a", at, "s", "q", 3.0)], "Q")
    assert [h["value"] for h in store.history("a")] == [3.0]
    store.close()


def test_a_writer_that_waits_too_long_for_the_lock_can_try_again(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer holds the write lock past lock_timeout: a one-line 'locked' error,
    and the connection is ready for the next transaction, not stuck in a failed one."""
    monkeypatch.setattr("okrsync.store.postgres.LOCK_TIMEOUT", 0.3)
    holder, waiter = Store(postgres_url), Store(postgres_url)
    holder.db.begin()
    with pytest.raises(StoreError, match="locked by another process"), waiter.transaction():
        pass
    assert not waiter.db.in_transaction
    holder.db.rollback()
    with waiter.transaction():
        waiter.db.execute("INSERT INTO runs (id, kind) VALUES ('after', 'sync')")
    assert waiter.db.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    holder.close()
    waiter.close()


def test_json_fields_survive_the_trip(postgres_url: str) -> None:
    """A stored measurement's inputs and timestamps read back as they went in."""
    from datetime import UTC, datetime

    from okrsync.measure.measurement import Measurement

    store = Store(postgres_url)
    at = datetime(2026, 11, 15, 12, 30, tzinfo=UTC)
    m = Measurement("a", at, "s", "q", 2.5, inputs={"x": 1.5}, note="ünïcode ✓")
    with store.transaction():
        store.append("r", [m], "Q")
    [row] = store.history("a")
    assert (row["value"], row["measured_at"], row["note"]) == (
        2.5,
        "2026-11-15T12:30:00.000000Z",
        "ünïcode ✓",
    )
    assert row["inputs"] == {"x": 1.5}
    store.close()
