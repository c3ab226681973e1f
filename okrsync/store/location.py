"""Where the OKR store is: `--db` / OKRSYNC_DB read as a SQLite path or a PostgreSQL URL.

A plain path, `sqlite:///relative/path` or `sqlite:////absolute/path` (as SQLAlchemy
writes them) is SQLite; `postgresql://user@host:5432/db` (or `postgres://`,
`postgresql+psycopg://`) is PostgreSQL. The password comes from OKRSYNC_DB_PASSWORD or
OKRSYNC_DB_PASSWORD_FILE, else from the URL, else from libpq's own PGPASSWORD / .pgpass.
It is never part of what `str()` shows.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from okrsync.errors import UsageError
from okrsync.secrets import read_secret, remember

PASSWORD_ENV = "OKRSYNC_DB_PASSWORD"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_ENCODE = "a port is a number; percent-encode / # @ in a password, or use OKRSYNC_DB_PASSWORD"
_POSTGRES = ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2")


class StoreUrlError(UsageError):
    """`--db` is neither a path nor a URL okrsync can open (exit 2)."""


@dataclass(frozen=True)
class StoreUrl:
    """A parsed `--db`: a SQLite file (or `:memory:`) or a PostgreSQL server's database."""

    kind: Literal["sqlite", "postgres"]
    path: str = ""
    """SQLite: the file."""
    url: str = ""
    """PostgreSQL: the URL for libpq (scheme normalised), password included if given."""
    host: str = ""
    port: int = 5432
    database: str = ""
    user: str = ""
    password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        """How messages name the store: the path, or the URL without any password."""
        if self.kind == "sqlite":
            return self.path
        user = f"{self.user}@" if self.user else ""
        return f"postgresql://{user}{self.host}:{self.port}/{self.database}"


def parse(text: str | os.PathLike[str], environ: dict[str, str] | None = None) -> StoreUrl:
    """Read a `--db` value; a malformed or unsupported URL is a StoreUrlError."""
    value = os.fspath(text)
    scheme = _SCHEME.match(value)
    if scheme is None:
        if not value.strip():
            raise StoreUrlError("--db / OKRSYNC_DB is empty: give a SQLite path or a URL")
        return StoreUrl("sqlite", path=value)
    name = scheme.group(1).lower()
    if name == "sqlite":
        return _sqlite(value)
    if name in _POSTGRES:
        return _postgres(value, environ)
    raise StoreUrlError(
        f"--db: unsupported URL scheme {name}:// (use a SQLite path, sqlite:///path "
        "or postgresql://user@host:5432/database)"
    )


def _sqlite(value: str) -> StoreUrl:
    rest = value[len("sqlite://") :]
    if rest in ("", "/", "/:memory:"):
        return StoreUrl("sqlite", path=":memory:")
    if not rest.startswith("/"):
        raise StoreUrlError(
            f"--db {value!r}: a SQLite URL is sqlite:///relative/path or sqlite:////absolute/path"
        )
    return StoreUrl("sqlite", path=unquote(rest[1:].split("?", 1)[0]))


def _postgres(value: str, environ: dict[str, str] | None) -> StoreUrl:
    shown = re.sub(r"//.*@", "//…@", value)  # up to the last @: never echo a password back
    try:
        parts = urlsplit(value)
        port = parts.port or 5432
    except ValueError:  # its text quotes the URL: a password with a / or # in it
        raise StoreUrlError(f"--db {shown}: malformed PostgreSQL URL ({_ENCODE})") from None
    if "," in parts.netloc:
        raise StoreUrlError(f"--db {shown}: several hosts in one URL are not supported")
    database = unquote(parts.path.lstrip("/"))
    if "/" in database or "@" in parts.path:
        raise StoreUrlError(f"--db {shown}: the path must be one database name ({_ENCODE})")
    query = parse_qsl(parts.query, keep_blank_values=True)
    in_query = [v for k, v in query if k == "password"]
    user = unquote(parts.username or "")
    try:
        password = read_secret(PASSWORD_ENV, environ)
    except OSError as exc:
        raise StoreUrlError(str(exc)) from None
    for given in (unquote(parts.password) if parts.password is not None else None, *in_query):
        if given:
            remember(given)
            password = password if password is not None else given
    netloc = parts.netloc.rsplit("@", 1)[-1]
    at = f"{parts.username}@" if parts.username else ""
    rest = urlencode([(k, v) for k, v in query if k != "password"])
    url = f"postgresql://{at}{netloc}{parts.path}" + (f"?{rest}" if rest else "")
    return StoreUrl(
        "postgres",
        url=url,
        host=parts.hostname or "localhost",
        port=port,
        database=database or user or "postgres",
        user=user,
        password=password,
    )
