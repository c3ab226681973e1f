"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_server import PrometheusServer, start_prometheus

# The example plugin is a separate package with its own tests; test_plugin.py installs it
# and runs them in a subprocess, so this session never imports it.
collect_ignore = ["plugin_counter"]


@pytest.fixture(scope="session")
def prometheus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A real Prometheus on 127.0.0.1 scraping `.exporter` every second; skipped if absent."""
    with start_prometheus(tmp_path_factory.mktemp("prometheus")) as server:
        yield server
