"""Cross-checks that bound and protect: parent chains at most 32 deep (cycles still named),
and credentials in any source (URL userinfo, secret headers) refused without echoing them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from okrsync.config.loader import load
from okrsync.connectors.http_json import HttpSource
from okrsync.errors import ConfigError

PERIOD = "period: {name: Q, start: 2026-10-01, end: 2026-12-31}\n"


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(path)
    return [str(p) for p in info.value.problems]


def test_long_parent_chain_is_one_error_and_fast(tmp_path: Path) -> None:
    """A 500-objective chain of parents is one error, at the first objective too deep."""
    rows = [PERIOD, "objectives:\n  - {id: o0, title: T}\n"]
    rows += [f"  - {{id: o{i}, title: T, parent: o{i - 1}}}\n" for i in range(1, 501)]
    path = tmp_path / "chain.yaml"
    path.write_text("".join(rows))
    started = time.monotonic()
    found = problems(path)
    assert time.monotonic() - started < 2.0
    assert found == [
        f"{path}:36: objectives[33]: parent: 33 levels of parents (o33 -> o32 -> o31 -> ... "
        "-> o0), more than the 32 allowed: give 'o33' a parent nearer the top"
    ]


def test_32_levels_of_parents_are_allowed(tmp_path: Path) -> None:
    """Exactly 32 levels of parents load."""
    rows = [PERIOD, "objectives:\n  - {id: o0, title: T}\n"]
    rows += [f"  - {{id: o{i}, title: T, parent: o{i - 1}}}\n" for i in range(1, 33)]
    path = tmp_path / "chain.yaml"
    path.write_text("".join(rows))
    assert len(load(path).objectives) == 33


def test_long_cycle_of_parents_is_reported(tmp_path: Path) -> None:
    """A cycle longer than the depth bound is still reported as a cycle."""
    rows = [PERIOD, "objectives:\n"]
    rows += [f"  - {{id: o{i}, title: T, parent: o{(i + 1) % 40}}}\n" for i in range(40)]
    path = tmp_path / "cycle.yaml"
    path.write_text("".join(rows))
    found = problems(path)
    assert len(found) == 40
    assert (
        found[0]
        == f"{path}:3: objectives[0]: parent: cycle of parents: o0 -> o1 -> o2 -> o3 -> ..."
    )


def test_no_message_shows_a_credential(tmp_path: Path) -> None:
    """Credentials in URLs and headers are errors whose messages never show the secret."""
    path = tmp_path / "okrs.yaml"
    path.write_text(
        PERIOD + "sources:\n"
        "  a: {type: prometheus, url: 'http://admin:hunter2@h', timeout: x}\n"
        "  b: {type: http, url: 'not a url', headers: {X-Auth-Token: hunter2, X-Team: 5}}\n"
        "  c: {type: github, api_url: 'https://u:hunter2@ghe.example.com/api/v3'}\n"
    )
    found = "\n".join(problems(path))
    assert "hunter2" not in found and "admin" not in found
    assert "OKRSYNC_A_PASSWORD" in found and "OKRSYNC_B_HEADER_X_AUTH_TOKEN" in found
    assert "sources.a.timeout" in found and "sources.b.headers.X-Team" in found


def test_http_source_model_rejects_secret_headers() -> None:
    """HttpSource itself refuses secret-looking headers, naming the env variable."""
    with pytest.raises(ValidationError, match="set OKRSYNC_STATUS_HEADER_X_API_KEY instead"):
        HttpSource.model_validate(
            {"url": "http://x", "headers": {"X-Api-Key": "k"}}, context={"source": "status"}
        )
    with pytest.raises(ValidationError, match=r"set OKRSYNC_<SOURCE>_HEADER_AUTHORIZATION"):
        HttpSource.model_validate({"url": "http://x", "headers": {"Authorization": "Bearer k"}})
    assert HttpSource.model_validate({"url": "http://x", "headers": {"X-Team": "sre"}}).headers
