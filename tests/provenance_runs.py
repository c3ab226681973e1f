"""The steps the override and explain tests share: a config with an automated Prometheus KR,
a formula KR and a manual KR; measuring it at a pinned moment through the real Prometheus
connector against a `responses` fake shaped like the real /api/v1/query answer; and CLI
runs in-process."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from okrsync.cli.main import main
from okrsync.config.loader import Config, load
from okrsync.connector import Connector
from okrsync.connectors.prometheus import PrometheusConnector
from okrsync.measure.measurer import Measurer
from okrsync.service.once import RunResult, run_once
from okrsync.store.store import Store
from okrsync.timefmt import parse_instant

URL = "http://prometheus.test:9090"
CONFIG = f"""\
period: {{name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}}
defaults: {{every: 1d, thresholds: {{on_track: 0.10, at_risk: 0.25}}, stale_after: 3}}
sources:
  prom: {{type: prometheus, url: "{URL}"}}
objectives:
  - id: reliability
    title: Reliable
    key_results:
      - {{id: uptime, title: API uptime, source: prom, query: "up_ratio", start: 50, target: 100}}
      - id: closure
        formula: closed / total * 100
        inputs:
          closed: {{source: prom, query: "sum(bugs_closed)"}}
          total: {{source: prom, query: "sum(bugs_opened)"}}
        start: 50
        target: 90
      - {{id: postmortems, source: manual, start: 0, target: 10}}
"""


def vector(value: float, job: str = "api") -> dict[str, Any]:
    """A Prometheus instant-query answer with one series (the documented shape)."""
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": {"job": job}, "value": [1764000000.0, str(value)]}],
        },
    }


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "okrs.yaml"
    path.write_text(CONFIG)
    return path


def measure(
    tmp_path: Path, at: str, values: dict[str, float], commit: str | None = None
) -> RunResult:
    """`sync --once` as of `at` (the CLI refuses --now), each PromQL answered from `values`;
    `commit`: the config's git commit the run records (as `apply` does)."""
    config: Config = load(tmp_path / "okrs.yaml")

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        body = request.body if isinstance(request.body, str) else (request.body or b"").decode()
        fields = parse_qs(body) or parse_qs(urlsplit(str(request.url)).query)
        return 200, {}, json.dumps(vector(values[fields["query"][0]]))

    def make(name: str, cfg: Config) -> Connector:
        source = cfg.sources[name]
        assert source.type == "prometheus"
        return PrometheusConnector(name, source)  # type: ignore[arg-type]

    store = Store(tmp_path / "x.db")
    try:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            for method in (responses.GET, responses.POST):
                rsps.add_callback(method, f"{URL}/api/v1/query", callback=answer)
            measurer = Measurer(config, make)
            return run_once(config, store, parse_instant(at), measurer=measurer, commit=commit)
    finally:
        store.close()


def cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, *argv: str) -> tuple[int, str, str]:
    """`okrsync ARGV --config tmp/okrs.yaml --db tmp/x.db`, in-process."""
    where = ["--config", str(tmp_path / "okrs.yaml"), "--db", str(tmp_path / "x.db")]
    code = main([*argv, *where])
    out, err = capsys.readouterr()
    return code, out, err


def status_kr(capsys: pytest.CaptureFixture[str], tmp_path: Path, now: str, kr: str) -> Any:
    """The KR's entry in `status --json --now NOW`."""
    code, out, err = cli(capsys, tmp_path, "status", "--json", "--now", now)
    assert code == 0, err
    for objective in json.loads(out)["objectives"]:
        for entry in objective["key_results"]:
            if entry["id"] == kr:
                return entry
    raise AssertionError(f"{kr} not in status")


def when(text: str) -> datetime:
    return parse_instant(text)
