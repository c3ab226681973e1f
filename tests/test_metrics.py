"""The daemon's Prometheus metrics: names, every KR from start-up, reloads, fetch timing."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fakes import ScriptedConnector
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from okrsync.config.loader import Config, load
from okrsync.connector import Window
from okrsync.connectors.prometheus import PrometheusQuery
from okrsync.errors import TransientFetchError
from okrsync.measure.slo_reading import SloReading
from okrsync.progress.definitions import from_config
from okrsync.progress.maths import Observation
from okrsync.service.metrics import Metrics, View

NOW = datetime(2026, 11, 15, 12, tzinfo=UTC)
CONFIG = """\
period: {name: Q4, start: 2026-10-01, end: 2026-12-31}
defaults: {every: 1h}
sources:
  prom: {type: prometheus, url: "http://127.0.0.1:1"}
objectives:
  - id: parent
    title: P
  - id: o
    title: O
    parent: parent
    key_results:
      - {id: measured, source: prom, query: x, start: 0, target: 10}
      - {id: never, source: prom, query: y, target: 10}
      - {id: by-hand, source: manual, target: 4}
"""
# the names the issue asks for (a counter's family is named without `_total`)
EXPECTED = {
    "okrsync_kr_value",
    "okrsync_kr_progress",
    "okrsync_kr_last_success_timestamp_seconds",
    "okrsync_objective_progress",
    "okrsync_key_results",
    "okrsync_fetch_duration_seconds",
    "okrsync_fetch_errors",
    "okrsync_config_last_reload_successful",
    "okrsync_config_last_reload_success_timestamp_seconds",
    "okrsync_config_info",
    "okrsync_period_end_timestamp_seconds",  # issue 9: periods
    "okrsync_backfill_points",  # backfill in the daemon (exposed as _total)
    "okrsync_kr_error_budget_remaining",  # issue 13: SLO key results
    "okrsync_kr_burn_rate",
    "okrsync_leader",  # issue 14: replicas
}


@pytest.fixture
def config(tmp_path: Path) -> Config:
    path = tmp_path / "okrs.yaml"
    path.write_text(CONFIG)
    return load(path)


def scrape(metrics: Metrics) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample of the registry as {name: {sorted labels: value}}."""
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    text = generate_latest(metrics.registry).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_every_kr_has_series_from_start_up(config: Config) -> None:
    """KRs with and without data, manual ones too, each get value, progress and timestamp."""
    observations = {
        "measured": Observation(5.0, NOW - timedelta(minutes=5), False, NOW, None),
        "by-hand": Observation(4.0, NOW - timedelta(days=1), True, NOW - timedelta(days=1)),
    }
    view: View = (from_config(config), observations, NOW)
    samples = scrape(Metrics(lambda: view, process=False))

    def kr(name: str, kr_id: str) -> float:
        return samples[name][(("kr", kr_id), ("objective", "o"))]

    assert kr("okrsync_kr_value", "measured") == 5.0
    assert kr("okrsync_kr_progress", "measured") == 0.5
    assert (
        kr("okrsync_kr_last_success_timestamp_seconds", "measured")
        == (NOW - timedelta(minutes=5)).timestamp()
    )
    assert math.isnan(kr("okrsync_kr_value", "never"))
    assert math.isnan(kr("okrsync_kr_progress", "never"))
    assert kr("okrsync_kr_last_success_timestamp_seconds", "never") == 0.0
    assert kr("okrsync_kr_progress", "by-hand") == 1.0
    assert samples["okrsync_objective_progress"][(("objective", "o"),)] == pytest.approx(0.75)
    assert samples["okrsync_objective_progress"][(("objective", "parent"),)] == pytest.approx(0.75)
    by_status = {labels[0][1]: v for labels, v in samples["okrsync_key_results"].items()}
    assert by_status == {
        "done": 1,
        "on_track": 1,  # half way, about half of the period gone
        "at_risk": 0,
        "off_track": 0,
        "stale": 0,
        "no_data": 1,
    }


SLO_CONFIG = """\
period: {name: Q4, start: 2026-10-01, end: 2026-12-31}
sources:
  prom: {type: prometheus, url: "http://127.0.0.1:1"}
objectives:
  - id: reliability
    title: R
    key_results:
      - id: checkout
        source: prom
        slo: {good: "g[{window}]", total: "t[{window}]", objective: 99.9}
      - id: search
        source: prom
        slo: {good: "g2[{window}]", total: "t2[{window}]", objective: 99}
"""


def test_slo_krs_have_budget_and_burn_rate_series(tmp_path: Path) -> None:
    """Budget remaining per SLO KR (NaN before its first reading), a burn rate per window
    (NaN for a window without events), labelled by KR and OKR objective."""
    (tmp_path / "okrs.yaml").write_text(SLO_CONFIG)
    config = load(tmp_path / "okrs.yaml")
    reading = SloReading(
        99.9, "period", "3931200s", 99.95, 999_500, 1_000_000, 0.5, {"5m": None, "1h": 20.0}
    )
    at = NOW - timedelta(minutes=1)
    view: View = (from_config(config), {"checkout": Observation(99.95, at, slo=reading)}, NOW)
    samples = scrape(Metrics(lambda: view, process=False))
    budget = samples["okrsync_kr_error_budget_remaining"]
    assert budget[(("kr", "checkout"), ("objective", "reliability"))] == 0.5
    assert math.isnan(budget[(("kr", "search"), ("objective", "reliability"))])
    burn = samples["okrsync_kr_burn_rate"]
    labels = (("kr", "checkout"), ("objective", "reliability"))
    assert burn[(*labels, ("window", "1h"))] == 20.0
    assert math.isnan(burn[(*labels, ("window", "5m"))])
    assert not any(dict(k)["kr"] == "search" for k in burn)


def test_reload_metrics_keep_the_running_config_on_failure(config: Config) -> None:
    """A failed reload sets successful to 0 but keeps the last success time and config hash."""
    metrics = Metrics(lambda: None, process=False)
    metrics.reloaded("abc123", ok=True, at=1000.0)
    samples = scrape(metrics)
    assert samples["okrsync_config_last_reload_successful"][()] == 1
    assert samples["okrsync_config_last_reload_success_timestamp_seconds"][()] == 1000.0
    assert samples["okrsync_config_info"] == {(("hash", "abc123"),): 1}
    metrics.reloaded("abc123", ok=False)
    metrics.reloaded("def456", ok=True, at=2000.0)
    metrics.reloaded("def456", ok=False)
    samples = scrape(metrics)
    assert samples["okrsync_config_last_reload_successful"][()] == 0
    assert samples["okrsync_config_last_reload_success_timestamp_seconds"][()] == 2000.0
    assert samples["okrsync_config_info"] == {(("hash", "def456"),): 1}


def test_fetches_are_timed_and_failures_counted_per_source(config: Config) -> None:
    """The instrumented connector observes every request and counts failed ones by source."""
    metrics = Metrics(lambda: None, process=False)
    inner = ScriptedConnector({"x": 3, "y": TransientFetchError("prom: timeout")})
    conn = metrics.instrument(lambda name, cfg: inner)("prom", config)
    window = Window(NOW, NOW)
    assert conn.fetch(PrometheusQuery(query="x"), window).value == 3
    with pytest.raises(TransientFetchError):
        conn.fetch(PrometheusQuery(query="y"), window)
    assert conn.requests == 2
    samples = scrape(metrics)
    assert samples["okrsync_fetch_duration_seconds_count"][(("source", "prom"),)] == 2
    assert samples["okrsync_fetch_errors_total"][(("source", "prom"),)] == 1


def test_metric_names_are_exactly_the_documented_ones(config: Config) -> None:
    """Every okrsync_ family is one the issue names, and all of them are there from start-up."""
    view: View = (from_config(config), {}, NOW)
    metrics = Metrics(lambda: view)
    metrics.reloaded("abc123", ok=True)
    metrics.touch_source("prom")
    text = generate_latest(metrics.registry).decode()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {n for n in names if n.startswith("okrsync_")} == EXPECTED
    assert "process_resident_memory_bytes" in text


def test_a_scrape_never_fails_when_okr_series_cannot_be_computed(config: Config) -> None:
    """If the OKR series raise (here: the view), the error is logged and the scrape still
    has the fetch, reload and process series."""
    import structlog.testing

    def broken() -> View:
        raise RecursionError("maximum recursion depth exceeded")

    metrics = Metrics(broken)
    metrics.reloaded("abc123", ok=True, at=1000.0)
    metrics.touch_source("prom")
    with structlog.testing.capture_logs() as events:
        text = generate_latest(metrics.registry).decode()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert not {n for n in names if n.startswith("okrsync_kr")}
    assert "okrsync_objective_progress" not in names
    assert {"okrsync_fetch_errors", "okrsync_config_info"} <= names
    assert "process_resident_memory_bytes" in text
    [event] = [e for e in events if e["event"] == "okr_metrics_failed"]
    assert event["log_level"] == "error"
    assert event["error"] == "RecursionError: maximum recursion depth exceeded"


def test_a_long_chain_of_parents_scrapes(config: Config) -> None:
    """Objectives chained 3,000 parents deep (deeper than Python's recursion limit) all get
    their series; the tree is evaluated without recursion."""
    import dataclasses

    from okrsync.config.model import Objective

    chain = [Objective(id="link-0", title="L")]
    chain += [Objective(id=f"link-{i}", title="L", parent=f"link-{i - 1}") for i in range(1, 3000)]
    leaf = config.objectives[1].model_copy(update={"parent": "link-2999"})
    deep = dataclasses.replace(config, objectives=[*chain, leaf])
    observations = {"measured": Observation(5.0, NOW, False, NOW, None)}
    view: View = (from_config(deep), observations, NOW)
    samples = scrape(Metrics(lambda: view, process=False))
    progress = samples["okrsync_objective_progress"]
    assert len(progress) == 3001
    assert progress[(("objective", "link-0"),)] == pytest.approx(0.5)
    assert samples["okrsync_kr_value"][(("kr", "measured"), ("objective", "o"))] == 5.0
