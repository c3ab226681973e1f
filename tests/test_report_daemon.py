"""`/report` on the daemon: the HTML report with filters, cached until the next stored
measurement, and short 4xx answers for bad filters."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from prometheus_server import free_port

from okrsync.config.loader import load
from okrsync.progress.definitions import from_config
from okrsync.service.report_page import MAX_AGE, ReportPage, parse

CONFIG = """\
period: {name: 2026-Q4, start: 2026-01-01, end: 2099-12-31}
objectives:
  - id: company
    title: "Company <script>alert(1)</script>"
    owner: exec
    key_results:
      - {id: nps, source: manual, start: 0, target: 50}
  - id: rel
    title: Reliable
    owner: sre
    key_results:
      - {id: drills, source: manual, start: 0, target: 10}
"""


def cli(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    db = ["--config", str(tmp_path / "okrs.yaml"), "--db", str(tmp_path / "x.db")]
    return subprocess.run(
        [sys.executable, "-m", "okrsync", argv[0], *db, *argv[1:]],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("report-daemon")


@pytest.fixture(scope="module")
def daemon(folder: Path) -> Iterator[str]:
    """One running `okrsync run` on manual KRs only for the module; yields its base URL."""
    tmp_path = folder
    (tmp_path / "okrs.yaml").write_text(CONFIG)
    assert cli(tmp_path, "checkin", "nps", "10").returncode == 0
    port = free_port()
    command = [sys.executable, "-m", "okrsync", "run", "--listen", f"127.0.0.1:{port}"]
    command += ["--config", str(tmp_path / "okrs.yaml"), "--db", str(tmp_path / "x.db")]
    log = (tmp_path / "daemon.log").open("wb")
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        assert proc.poll() is None, (tmp_path / "daemon.log").read_text()
        assert time.monotonic() < deadline, "daemon not ready"
        time.sleep(0.05)
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def test_report_is_served_filtered_and_refreshed(daemon: str, folder: Path) -> None:
    """/report is the HTML report; owner/objective filter it; a check-in shows at once."""
    page = requests.get(f"{daemon}/report", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "&lt;script&gt;" in page.text and "<script" not in page.text
    assert 'id="kr-nps"' in page.text and 'id="kr-drills"' in page.text
    sre = requests.get(f"{daemon}/report?owner=sre", timeout=10).text
    assert 'id="kr-drills"' in sre and 'id="kr-nps"' not in sre
    one = requests.get(f"{daemon}/report?objective=company&period=2026-Q4", timeout=10).text
    assert 'id="kr-nps"' in one and 'id="kr-drills"' not in one
    assert requests.get(f"{daemon}/report", timeout=10).text == page.text  # cached
    assert cli(folder, "checkin", "drills", "7").returncode == 0
    fresh = requests.get(f"{daemon}/report", timeout=10).text
    assert fresh != page.text and "7 → 7" not in fresh and "– → 7" in fresh


@pytest.mark.parametrize(
    ("query", "code", "says"),
    [
        ("objective=nope", 404, "no objective 'nope'"),
        ("period=1999-Q1", 404, "no such period"),
        ("owner=nobody", 404, "no objective owned by 'nobody'"),
        ("colour=red", 400, "unknown parameter 'colour'"),
        ("owner=a&owner=b", 400, "'owner' given 2 times"),
        ("owner=", 400, "'owner' is empty"),
    ],
)
def test_bad_filters_are_short_answers(daemon: str, query: str, code: int, says: str) -> None:
    """Unknown names are 404, malformed queries 400: one line of text, never a traceback."""
    answer = requests.get(f"{daemon}/report?{query}", timeout=10)
    assert answer.status_code == code and says in answer.text
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert "Traceback" not in answer.text and answer.text.count("\n") == 1


def test_parse_reads_only_the_three_filters() -> None:
    """Percent-encoding is decoded; nothing but owner, objective, period is accepted."""
    filters = parse("owner=team%20a&objective=o1&period=2026-Q4")
    assert (filters.owner, filters.objective, filters.period) == ("team a", "o1", "2026-Q4")
    assert parse("") == parse("")
    with pytest.raises(ValueError, match="longer than"):
        parse("owner=" + "x" * 5000)


def test_the_page_is_cached_until_the_next_measurement(tmp_path: Path) -> None:
    """Same filters, same store: one render; a check-in, a new config or MAX_AGE: again.
    Other filters are cached apart."""
    (tmp_path / "okrs.yaml").write_text(CONFIG)
    assert cli(tmp_path, "checkin", "nps", "10").returncode == 0
    defs = from_config(load(tmp_path / "okrs.yaml"))
    ticks = [0.0]
    page = ReportPage(
        tmp_path / "x.db", lambda: (defs, "hash-1"), lambda: datetime.now(UTC), lambda: ticks[0]
    )
    first = page.get("")
    assert first[0] == 200 and page.get("") == first and page.renders == 1
    assert page.get("owner=sre")[0] == 200 and page.renders == 2
    assert page.get("") == first and page.renders == 2
    assert cli(tmp_path, "checkin", "drills", "3").returncode == 0
    assert page.get("") != first and page.renders == 3
    ticks[0] = MAX_AGE + 1
    page.get("")
    assert page.renders == 4
    page.current = lambda: (defs, "hash-2")
    page.get("")
    assert page.renders == 5


def test_before_a_config_is_loaded(tmp_path: Path) -> None:
    """No running config yet: 503 with a short text."""
    page = ReportPage(tmp_path / "x.db", lambda: None, lambda: datetime.now(UTC), lambda: 0.0)
    code, kind, body = page.get("")
    assert code == 503 and kind.startswith("text/plain") and b"no config loaded" in body
