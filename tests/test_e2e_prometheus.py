"""The whole spine against a real Prometheus: `okrsync` as a subprocess, values end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from clock import running_period
from prometheus_server import PrometheusServer, free_port, wait_for_value

CONFIG = """\
sources:
  prom: {{type: prometheus, url: "{url}"}}
  gone: {{type: prometheus, url: "http://127.0.0.1:{dead}", timeout: 1}}
objectives:
  - id: reliability
    title: Reliable
    key_results:
      - {{id: closed, source: prom, query: 'sum(e2e_bugs{{state="closed"}})', target: 90}}
      - id: closure-rate
        formula: closed / total * 100
        inputs:
          closed: {{source: prom, query: 'sum(e2e_bugs{{state="closed"}})'}}
          total: {{source: prom, query: sum(e2e_bugs)}}
        start: 50
        target: 90
      - {{id: elsewhere, source: gone, query: up, target: 1}}
"""


def okrsync(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OKRSYNC_LOG_FORMAT": "json"}
    return subprocess.run(
        [sys.executable, "-m", "okrsync", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_sync_and_status_read_real_prometheus(
    prometheus_server: PrometheusServer, tmp_path: Path
) -> None:
    """Exporter values reach the store through a real Prometheus; a dead source fails alone."""
    exporter = prometheus_server.exporter
    exporter.set("e2e_bugs", 30, state="closed")
    exporter.set("e2e_bugs", 10, state="open")
    wait_for_value(prometheus_server.url, "sum(e2e_bugs)", 40)
    (tmp_path / "okrs.yaml").write_text(
        running_period("2026-Q4") + CONFIG.format(url=prometheus_server.url, dead=free_port())
    )

    result = okrsync("sync", "--once", "--config", "okrs.yaml", "--db", "s.db", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "✔ closed = 30" in result.stdout
    assert "✔ closure-rate = 75" in result.stdout
    assert "✖ elsewhere: gone: connection refused" in result.stdout
    assert "requests per source: gone=3, prom=2" in result.stdout

    status = okrsync("status", "--json", "--config", "okrs.yaml", "--db", "s.db", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    krs = {k["id"]: k for k in json.loads(status.stdout)["objectives"][0]["key_results"]}
    assert krs["closed"]["value"] == 30 and krs["closed"]["progress"] == 30 / 90
    assert krs["closure-rate"]["value"] == 75 and krs["closure-rate"]["progress_raw"] == 25 / 40
    assert krs["elsewhere"]["status"] == "no_data" and "refused" in krs["elsewhere"]["error"]

    history = okrsync("history", "closure-rate", "--json", "--db", "s.db", cwd=tmp_path)
    [row] = json.loads(history.stdout)
    assert row["inputs"] == {"closed": 30, "total": 40}
    assert 'sum(e2e_bugs{state="closed"})' in row["query"]
