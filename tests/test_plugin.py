"""A third-party connector really plugs in: the example package under tests/plugin_counter is
pip-installed, found through its entry point, validated and measured end to end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from clock import running_period

PLUGIN = Path(__file__).parent / "plugin_counter"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plugin installed with pip into its own folder (kept off this process's path)."""
    work = tmp_path_factory.mktemp("plugin")
    source = work / "src"
    shutil.copytree(PLUGIN, source)  # building writes into the tree: never into the repo
    target = work / "site"
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
            *("--no-deps", "--target", str(target), str(source)),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    assert list(target.glob("okrsync_counter-*.dist-info"))
    return target


class Counters(BaseHTTPRequestHandler):
    """GET /counters/<name> -> {"value": N}, like the API the plugin is written for."""

    values: ClassVar[dict[str, int]] = {"deploys": 7}

    def do_GET(self) -> None:
        name = self.path.rsplit("/", 1)[-1]
        found = name in self.values and self.path.startswith("/counters/")
        body = json.dumps({"value": self.values[name]} if found else {"error": "no"}).encode()
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Counters)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def okrsync(site: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site), "OKRSYNC_LOG_LEVEL": "warning"}
    return subprocess.run(
        [sys.executable, "-m", "okrsync", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def config(tmp_path: Path, url: str, kr: str) -> Path:
    path = tmp_path / "okrs.yaml"
    path.write_text(
        running_period("Q4") + f"sources:\n  counts: {{type: counter, url: '{url}'}}\n"
        "objectives:\n"
        "  - id: ship\n"
        "    title: Ship often\n"
        "    key_results:\n"
        f"      - {kr}\n"
    )
    return path


def test_plugin_connector_is_validated_and_measured(site: Path, api: str, tmp_path: Path) -> None:
    """The installed `counter` type validates, measures through the fake API and is stored."""
    cfg = config(
        tmp_path, api, "{id: deploys, source: counts, counter: deploys, scale: 2, target: 20}"
    )
    db = tmp_path / "okrsync.db"
    checked = okrsync(site, "validate", "--config", str(cfg))
    assert checked.returncode == 0, checked.stderr
    synced = okrsync(site, "sync", "--once", "--config", str(cfg), "--db", str(db))
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "✔ deploys = 14" in synced.stdout
    shown = okrsync(site, "status", "--json", "--config", str(cfg), "--db", str(db))
    row = json.loads(shown.stdout)["objectives"][0]["key_results"][0]
    assert (row["value"], row["source"], row["progress"]) == (14, "counts", 0.7)


def test_plugin_query_typo_is_a_validate_error_at_its_line(site: Path, tmp_path: Path) -> None:
    """A misspelt query key of the plugin's connector is `file:line` at validate, with a hint."""
    cfg = config(
        tmp_path, "http://127.0.0.1:9", "{id: deploys, source: counts, countr: x, target: 2}"
    )
    checked = okrsync(site, "validate", "--config", str(cfg))
    assert checked.returncode == 2
    assert checked.stderr.splitlines()[:2] == [
        f"{cfg}:8: objectives[0].key_results[0].countr: unknown key 'countr' "
        "(did you mean 'counter'?)",
        f"{cfg}:8: objectives[0].key_results[0]: counter sources need `counter`",
    ]


def test_plugin_source_model_checks_its_block(site: Path, tmp_path: Path) -> None:
    """The plugin's source model rejects a missing key in `sources:` with its line."""
    cfg = tmp_path / "okrs.yaml"
    cfg.write_text(running_period("Q4") + "sources:\n  counts: {type: counter}\n")
    checked = okrsync(site, "validate", "--config", str(cfg))
    assert checked.returncode == 2
    assert f"{cfg}:3: sources.counts.url: field required" in checked.stderr


def test_plugin_passes_the_shipped_contract_suite(site: Path, tmp_path: Path) -> None:
    """okrsync.testing's nine scenarios run against the plugin, as they do for built-ins."""
    tests = tmp_path / "tests"
    shutil.copytree(PLUGIN / "tests", tests)
    env = {**os.environ, "PYTHONPATH": str(site)}
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stdout[-3000:]
    assert "9 passed" in ran.stdout


def test_schema_includes_the_plugins_models(site: Path) -> None:
    """`okrsync schema` is built from the installed connectors, the plugin's included."""
    schema = json.loads(okrsync(site, "schema").stdout)
    mapping = schema["properties"]["sources"]["additionalProperties"]["discriminator"]["mapping"]
    assert mapping["counter"] == "#/$defs/CounterSource"
    assert "counter" in schema["$defs"]["KeyResult"]["properties"]
