"""The HTTP endpoint: liveness always 200, readiness follows config and store, /metrics."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from prometheus_client import CollectorRegistry, Gauge

from okrsync.errors import UsageError
from okrsync.service.health import HealthServer, HealthState, parse_listen


@pytest.fixture
def served() -> Iterator[tuple[HealthState, str]]:
    state = HealthState()
    registry = CollectorRegistry()
    Gauge("okrsync_test_gauge", "A gauge.", registry=registry).set(3)
    server = HealthServer("127.0.0.1:0", state.healthz, state.readyz, registry)
    server.start()
    yield state, f"http://127.0.0.1:{server.port}"
    server.close()


def test_liveness_stays_200_and_shows_a_rejected_config(served: tuple[HealthState, str]) -> None:
    """/healthz answers 200 with a rejected reload's problems in its body."""
    state, url = served
    state.loaded("abc123", 1000.0)
    state.store_ok = True
    state.rejected(["okrs.yaml:3: objectives[0]: title: field required"], 2000.0)
    answer = requests.get(f"{url}/healthz", timeout=5)
    assert answer.status_code == 200
    body = answer.json()
    assert body["config"]["hash"] == "abc123"
    assert body["config"]["last_reload_successful"] is False
    assert body["config"]["errors"] == ["okrs.yaml:3: objectives[0]: title: field required"]
    assert body["config"]["loaded_at"] == "1970-01-01T00:16:40Z"


def test_readiness_needs_a_config_and_a_writable_store(served: tuple[HealthState, str]) -> None:
    """/readyz is 503 until a config is loaded and the store was written, 503 again on failure."""
    state, url = served
    assert requests.get(f"{url}/readyz", timeout=5).status_code == 503
    state.loaded("abc123", 1000.0)
    state.store_ok = True
    assert requests.get(f"{url}/readyz", timeout=5).json() == {
        "ready": True,
        "config_loaded": True,
        "store_writable": True,
    }
    state.store_ok = False
    assert requests.get(f"{url}/readyz", timeout=5).status_code == 503


def test_metrics_and_unknown_paths(served: tuple[HealthState, str]) -> None:
    """/metrics serves the registry in the Prometheus text format; other paths are 404."""
    _, url = served
    answer = requests.get(f"{url}/metrics", timeout=5)
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert "okrsync_test_gauge 3.0" in answer.text
    assert requests.get(f"{url}/nope", timeout=5).status_code == 404


@pytest.mark.parametrize("listen", ["9464", "localhost", "host:port", ":9464", "a:99999"])
def test_bad_listen_addresses_name_the_flag(listen: str) -> None:
    """A listen address that is not HOST:PORT is a usage error that shows the right form."""
    with pytest.raises(UsageError, match="write HOST:PORT"):
        parse_listen(listen)


def test_listen_forms() -> None:
    """IPv4, IPv6 in brackets and names are accepted."""
    assert parse_listen("0.0.0.0:9464") == ("0.0.0.0", 9464)
    assert parse_listen("[::1]:9464") == ("::1", 9464)
    assert parse_listen("localhost:80") == ("localhost", 80)
