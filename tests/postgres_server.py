"""A real PostgreSQL on 127.0.0.1 for the store's tests, started by the suite itself.

Debian's `postgresql` package: `initdb` into a temp dir owned by the `postgres` user (the
server refuses to run as root), `pg_ctl start` on a free port, password authentication
over TCP so the tests see libpq refuse a wrong password. Each test gets a fresh database.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_server import free_port

USER = "okrsync"
PASSWORD = "pg-test-Secret-7f3a"  # a loopback test server's; tests assert it never shows
START_TIMEOUT = 60
_SPEED = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


def postgres_bin() -> Path:
    """Debian's newest PostgreSQL bin dir; skip (or fail on CI) when it is not installed."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=_version)
    if found:
        return found[-1].parent
    message = "PostgreSQL not installed (apt-get install postgresql; scripts/test does)"
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"{message}: CI must run the PostgreSQL store tests")
    pytest.skip(message)


def _version(path: Path) -> int:
    name = path.parent.parent.name
    return int(name) if name.isdigit() else 0


@dataclass
class PostgresServer:
    """A running server; `database()` makes a new empty database and gives its URL."""

    bin: Path
    port: int
    workdir: Path
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def url(self, database: str, *, user: str = USER) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """A fresh empty database's URL (without its password: see PASSWORD)."""
        name = f"t{next(self._names)}"
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def tables(self, url: str) -> int:
        """How many tables the database at `url` holds."""
        sql = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        return int(self.psql(sql, url.rsplit("/", 1)[1]))

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run `sql` as the superuser; its output, unaligned."""
        done = subprocess.run(
            [
                *(str(self.bin / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"),
                *("-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", database),
                *("-c", sql),
            ],
            env={**os.environ, "PGPASSWORD": PASSWORD},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql {sql!r}: {done.stderr.strip()}")
        return done.stdout.strip()


def _as_postgres(argv: Sequence[str]) -> list[str]:
    """Run as the `postgres` user when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return list(argv)
    return ["runuser", "-u", "postgres", "--", *argv]


def _run(argv: Sequence[str], what: str, log: Path | None = None) -> None:
    done = subprocess.run(
        _as_postgres(argv), capture_output=True, text=True, timeout=START_TIMEOUT, check=False
    )
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
        raise RuntimeError(f"{what} failed: {done.stdout}{done.stderr}{tail}")


@contextmanager
def start_postgres() -> Iterator[PostgresServer]:
    """initdb and start a server on a free 127.0.0.1 port; stop it and remove it on exit."""
    binaries = postgres_bin()
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as postgres")
    workdir = Path(tempfile.mkdtemp(prefix="okrsync-pg-"))  # not pytest's 0700 tmp tree
    data, log, pwfile = workdir / "data", workdir / "server.log", workdir / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
    os.chmod(workdir, 0o700)
    port = free_port()
    try:
        _run(
            [
                *(str(binaries / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={pwfile}"),
                *("--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8"),
                *("--locale=C", "--no-sync"),
            ],
            "initdb",
        )
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={workdir}"
        options += "".join(f" -c {o}" for o in _SPEED)
        _run(
            [
                *(str(binaries / "pg_ctl"), "start", "-D", str(data), "-l", str(log), "-w"),
                *("-t", str(START_TIMEOUT), "-o", options),
            ],
            "pg_ctl start",
            log,
        )
        yield PostgresServer(binaries, port, workdir)
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                _as_postgres([str(binaries / "pg_ctl"), "stop", "-D", str(data), "-m", "fast"]),
                capture_output=True,
                timeout=START_TIMEOUT,
                check=False,
            )
        shutil.rmtree(workdir, ignore_errors=True)
