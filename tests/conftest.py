"""Shared pytest fixtures."""

from __future__ import annotations

import logging
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog.testing
from backfill_sources import Sources
from postgres_server import PASSWORD, PostgresServer, start_postgres
from prometheus_server import PrometheusServer, start_prometheus
from pytest_httpserver import HTTPServer

# The example plugin is a separate package with its own tests; test_plugin.py installs it
# and runs them in a subprocess, so this session never imports it.
collect_ignore = ["plugin_counter"]


@pytest.fixture(scope="session")
def prometheus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A real Prometheus on 127.0.0.1 scraping `.exporter` every second; skipped if absent."""
    with start_prometheus(tmp_path_factory.mktemp("prometheus")) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL on 127.0.0.1; skipped (failed on CI) if it cannot be installed."""
    with start_postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh empty PostgreSQL database's URL, its password in OKRSYNC_DB_PASSWORD."""
    monkeypatch.setenv("OKRSYNC_DB_PASSWORD", PASSWORD)
    return postgres_server.database()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new store's `--db`, once on each backend: a SQLite file, a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def events() -> Iterator[list[MutableMapping[str, Any]]]:
    """The log events of the test, debug ones too (whatever level earlier tests set up)."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with structlog.testing.capture_logs() as captured:
            yield captured
    finally:
        structlog.configure(**saved)


@pytest.fixture
def sources(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sources]:
    """Loopback Jira and GitHub fakes answering by the date in their query (backfill
    tests), with the tokens their sources read; at the end no request is left waiting
    (the server is shared with the next test)."""
    monkeypatch.setenv("OKRSYNC_JIRA_TOKEN", "dc-pat-secret-1234")
    monkeypatch.setenv("OKRSYNC_GH_TOKEN", "ghp_secret_token_1234")
    fakes = Sources(httpserver)
    yield fakes
    fakes.release()
