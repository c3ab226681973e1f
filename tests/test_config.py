"""Config loading: valid corpora load, every invalid one reports its exact file:line problems."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from okrsync.config.loader import load
from okrsync.errors import ConfigError

CONFIGS = Path(__file__).parent / "configs"
INVALID = sorted((CONFIGS / "invalid").glob("*.yaml"))


def expected_problems(path: Path) -> list[str]:
    return [
        line.removeprefix("# expect: ").strip()
        for line in path.read_text().splitlines()
        if line.startswith("# expect: ")
    ]


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_config_reports_every_problem_at_its_line(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each invalid file yields exactly the problems its `# expect:` header lists, in order."""
    monkeypatch.chdir(path.parent)
    with pytest.raises(ConfigError) as info:
        load(path.name)
    assert [str(p) for p in info.value.problems] == expected_problems(path)


def test_full_example_loads_with_defaults_and_origins() -> None:
    """The full valid example keeps every field, fills defaults and knows where each KR is."""
    config = load(CONFIGS / "valid" / "full.yaml")
    assert config.period.timezone == "Europe/Berlin"
    # Berlin is UTC+2 on 1 October and UTC+1 on 1 January: the period is whole local days.
    assert config.period.starts_at == datetime(2026, 9, 30, 22, tzinfo=UTC)
    assert config.period.ends_at == datetime(2026, 12, 31, 23, tzinfo=UTC)
    found = config.find_kr("api-uptime")
    assert found is not None and found[0].id == "reliability"
    assert config.every_seconds(found[1]) == 300
    latency = config.find_kr("latency")
    assert latency is not None and config.every_seconds(latency[1]) == 1800
    assert config.origins["closure-rate"].line == 21
    assert config.defaults.thresholds.on_track == 0.05


def test_directory_merges_files_and_resolves_parents_across_them() -> None:
    """A directory's files merge: an objective in one file may name a parent in another."""
    config = load(CONFIGS / "valid" / "split")
    ids = {o.id for o in config.objectives}
    assert {"root", "child"} <= ids


def test_split_directory_sets_period_once(tmp_path: Path) -> None:
    """Two files that both set `period` are an error naming where it was first set."""
    (tmp_path / "a.yaml").write_text("period: {name: A, start: 2026-01-01, end: 2026-03-31}\n")
    (tmp_path / "b.yaml").write_text("period: {name: B, start: 2026-01-01, end: 2026-03-31}\n")
    with pytest.raises(ConfigError) as info:
        load(tmp_path)
    assert [str(p) for p in info.value.problems] == [
        f"{tmp_path}/b.yaml:1: period: already set in {tmp_path}/a.yaml:1"
    ]


def test_sinks_sharing_env_vars_across_files_are_an_error(tmp_path: Path) -> None:
    """Sinks in two files whose names give the same OKRSYNC_<NAME>_ stem would share
    credentials: the later one is reported, naming the first and the shared variables."""
    (tmp_path / "a.yaml").write_text(
        "period: {name: A, start: 2026-01-01, end: 2026-03-31}\n"
        "sinks:\n"
        "  okr-portal: {type: webhook, url: 'https://a.example.com/hook'}\n"
    )
    (tmp_path / "b.yaml").write_text(
        "sinks:\n"
        "  audit: {type: webhook, url: 'https://b.example.com/hook'}\n"
        "  OKR_portal: {type: webhook, url: 'https://c.example.com/hook'}\n"
    )
    with pytest.raises(ConfigError) as info:
        load(tmp_path)
    assert [str(p) for p in info.value.problems] == [
        f"{tmp_path}/b.yaml:3: sinks.OKR_portal: sink 'OKR_portal' and sink 'okr-portal' "
        f"({tmp_path}/a.yaml:3) would both read their credentials from OKRSYNC_OKR_PORTAL_*: "
        "rename one of them"
    ]


def test_missing_period_and_missing_path_are_errors(tmp_path: Path) -> None:
    """No period anywhere, or a path that does not exist, is a clear error."""
    (tmp_path / "a.yaml").write_text("objectives: []\n")
    with pytest.raises(ConfigError, match="no file sets `period"):
        load(tmp_path / "a.yaml")
    with pytest.raises(ConfigError, match="no such file or directory"):
        load(tmp_path / "nope")


def test_shipped_config_validates() -> None:
    """The example config/ in the repo is valid."""
    config = load(Path(__file__).parent.parent / "config")
    assert config.find_kr("api-uptime") is not None


def test_period_end_before_start_is_rejected(tmp_path: Path) -> None:
    """A period that ends before it starts is rejected at the period's line."""
    path = tmp_path / "p.yaml"
    path.write_text("\nperiod: {name: P, start: 2026-12-01, end: 2026-10-01}\n")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(info.value.problems[0]) == (
        f"{path}:2: period: end 2026-10-01 is before start 2026-12-01"
    )
