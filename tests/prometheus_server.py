"""A real Prometheus on 127.0.0.1 for end-to-end tests: one scraping a tiny in-process
exporter (`start_prometheus`), or one holding past samples written with promtool
(`start_prometheus_with_history`), for range queries and backfills."""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

SCRAPE_INTERVAL = "1s"
START_TIMEOUT = 30.0

Labels = tuple[tuple[str, str], ...]


class Exporter:
    """Serves settable gauges at /metrics in the Prometheus text format."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[Labels, float]] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set gauge `name{labels}` to `value`; seen by Prometheus at its next scrape."""
        with self._lock:
            self._values.setdefault(name, {})[tuple(sorted(labels.items()))] = value

    def remove(self, name: str, **labels: str) -> None:
        """Stop exporting `name{labels}` (Prometheus then marks the series stale)."""
        with self._lock:
            self._values.get(name, {}).pop(tuple(sorted(labels.items())), None)

    def render(self) -> str:
        """The current gauges as a /metrics page."""
        lines: list[str] = []
        with self._lock:
            for name, series in sorted(self._values.items()):
                lines.append(f"# TYPE {name} gauge")
                for labels, value in sorted(series.items()):
                    pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                    lines.append(f"{name}{{{pairs}}} {_format(value)}")
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = exporter.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet scrapes
                pass

        return Handler


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _format(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


@dataclass
class PrometheusServer:
    """A running Prometheus (`url`) and the exporter it scrapes every second."""

    url: str
    exporter: Exporter
    log: Path


def free_port() -> int:
    """A loopback port free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prometheus_binary(name: str = "prometheus") -> str:
    """Path of the prometheus (or promtool) binary; skip (or fail on CI) when it is not
    installed (Debian's `prometheus` package ships both)."""
    found = shutil.which(name) or shutil.which(f"/usr/bin/{name}")
    if found:
        return found
    message = f"{name} binary not found (apt-get install prometheus)"
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"{message}: CI must run the real-Prometheus tests")
    pytest.skip(message)


def _log_tail(log: Path) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    except OSError:
        return "(no log)"


@contextmanager
def start_prometheus(workdir: Path) -> Iterator[PrometheusServer]:
    """Start the exporter and Prometheus in `workdir`; stop both on exit."""
    binary = prometheus_binary()
    exporter = Exporter()
    exporter.start()
    try:
        with _prometheus(binary, workdir, exporter.port) as (url, log):
            # target discovery reaches the scraper after ~5 s: wait once here, not per test
            wait_for_value(url, 'up{job="okrsync_test"}', 1, timeout=START_TIMEOUT)
            yield PrometheusServer(url, exporter, log)
    finally:
        exporter.stop()


@contextmanager
def _prometheus(
    binary: str, workdir: Path, target_port: int | None, extra: Sequence[str] = ()
) -> Iterator[tuple[str, Path]]:
    """Run Prometheus scraping 127.0.0.1:`target_port` (nothing when None), with `extra`
    flags; yields its URL and log file. Its data is in `workdir`/data."""
    config = workdir / "prometheus.yml"
    scrape = (
        "scrape_configs:\n"
        "  - job_name: okrsync_test\n"
        "    honor_labels: true\n"
        "    static_configs:\n"
        f'      - targets: ["127.0.0.1:{target_port}"]\n'
        if target_port is not None
        else ""
    )
    config.write_text(
        f"global:\n  scrape_interval: {SCRAPE_INTERVAL}\n  evaluation_interval: 1s\n{scrape}",
        encoding="utf-8",
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "prometheus.log"
    args = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
        *extra,
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        _wait_ready(proc, url, log)
        yield url, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with {proc.returncode}:\n{_log_tail(log)}")
        try:
            if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"prometheus not ready after {START_TIMEOUT:g}s:\n{_log_tail(log)}")


def wait_for_value(url: str, promql: str, expected: float, timeout: float = 15) -> None:
    """Poll Prometheus at `url` until `promql` gives `expected` (one series or a scalar)."""
    deadline = time.monotonic() + timeout
    seen: Any = None
    while time.monotonic() < deadline:
        seen = requests.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5).json()
        data = seen.get("data", {})
        if data.get("resultType") == "scalar":
            values = [float(data["result"][1])]
        else:
            values = [float(s["value"][1]) for s in data.get("result", [])]
        if values == [expected]:
            return
        time.sleep(0.1)
    raise AssertionError(f"{promql!r} did not become {expected} within {timeout:g}s: {seen}")


# --- a Prometheus holding past data -------------------------------------------------------

HEAD_SPAN = timedelta(hours=3)
"""promtool must not write samples this recent: they overlap the head block Prometheus
is still appending to (see "Backfilling from OpenMetrics format" in its storage docs)."""
BLOCK_SPAN = (
    "744h"  # promtool's --max-block-duration: 31-day blocks, not 2 h ones (4 weeks: 0.1 s, not 8 s)
)


@dataclass(frozen=True)
class HistorySample:
    """One past sample of gauge `name{labels}` (`at`: aware; OpenMetrics keeps whole ms)."""

    name: str
    labels: Mapping[str, str]
    value: float
    at: datetime


def series(
    name: str,
    labels: Mapping[str, str],
    start: datetime,
    end: datetime,
    step: timedelta,
    value: Callable[[int], float | None],
) -> Iterator[HistorySample]:
    """Samples of `name{labels}` at start + k*step up to `end`, valued `value(k)`; a k for
    which `value` gives None has no sample (a gap)."""
    k = 0
    while (at := start + k * step) <= end:
        v = value(k)
        if v is not None:
            yield HistorySample(name, dict(labels), v, at)
        k += 1


def openmetrics(samples: Iterable[HistorySample]) -> str:
    """`samples` as OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`: each
    metric family once (`# TYPE name gauge`), its series sorted by labels, each series'
    samples in time order, timestamps in seconds, and the final `# EOF`. (promtool 2.42
    silently drops a sample older than the one before it in its series, reads a
    millisecond timestamp as seconds, and refuses a file without `# EOF`.)"""
    by_name: dict[str, dict[Labels, dict[datetime, float]]] = {}
    for sample in samples:
        key = tuple(sorted(sample.labels.items()))
        by_name.setdefault(sample.name, {}).setdefault(key, {})[sample.at] = sample.value
    lines: list[str] = []
    for name, by_labels in sorted(by_name.items()):
        lines.append(f"# TYPE {name} gauge")
        for labels, values in sorted(by_labels.items()):
            pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            for at, value in sorted(values.items()):
                seconds = f"{at.timestamp():.3f}".rstrip("0").rstrip(".")
                lines.append(f"{name}{{{pairs}}} {_format(value)} {seconds}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@dataclass
class HistoricalPrometheus:
    """A running Prometheus (`url`) whose only data are the past samples it was given."""

    url: str
    log: Path
    data: Path
    samples: int = 0  # how many samples promtool was given

    def requests_served(self, handler: str = "/api/v1/query_range") -> float:
        """HTTP requests Prometheus has answered at `handler` (any status), from its own
        prometheus_http_requests_total at /metrics: a count independent of the client."""
        text = requests.get(f"{self.url}/metrics", timeout=5).text
        wanted = f'handler="{handler}"'
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("prometheus_http_requests_total{") and wanted in line
        )


@contextmanager
def start_prometheus_with_history(
    workdir: Path, samples: Iterable[HistorySample], now: datetime | None = None
) -> Iterator[HistoricalPrometheus]:
    """Write `samples` as OpenMetrics, turn them into TSDB blocks with promtool and start
    Prometheus on them in `workdir` (retention 100y, so old blocks are not deleted at
    start; it scrapes nothing); stop it on exit. Samples must be older than 3 h."""
    binary, promtool = prometheus_binary(), prometheus_binary("promtool")
    listed = list(samples)
    limit = (now or datetime.now(UTC)) - HEAD_SPAN
    recent = [s for s in listed if s.at > limit]
    if recent:
        raise ValueError(f"{len(recent)} samples are newer than {limit:%Y-%m-%dT%H:%M}Z (now - 3h)")
    source = workdir / "history.om.txt"
    source.write_text(openmetrics(listed), encoding="utf-8")
    data = workdir / "data"
    made = subprocess.run(
        [
            promtool,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "-q",
            f"--max-block-duration={BLOCK_SPAN}",
            str(source),
            str(data),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if made.returncode != 0:
        raise RuntimeError(f"promtool failed ({made.returncode}):\n{made.stdout}{made.stderr}")
    extra = ["--storage.tsdb.retention.time=100y"]
    with _prometheus(binary, workdir, None, extra) as (url, log):
        yield HistoricalPrometheus(url, log, data, len(listed))
