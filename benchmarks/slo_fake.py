"""A loopback fake Prometheus for bench_slo.py: /api/v1/query answered after a fixed latency
with event counts read from the PromQL text, in Prometheus 2.42's vector shape."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _spread(text: str, modulo: int) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest()[:6], 16) % modulo


def count(promql: str) -> float:
    """Events the query counts: a job's rate x its window; good ones are a share of those
    (errors at 1-9 per 10,000 requests; a latency bucket `le` holds 1 - 0.01/le)."""
    job = re.search(r'job="([^"]+)"', promql)
    window = re.search(r"\[(\d+)([smhdw])\]", promql)
    if job is None or window is None:
        raise ValueError(f"no job or window in {promql!r}")
    total = (5 + _spread(job[1], 500)) * int(window[1]) * UNITS[window[2]]
    if 'code!~"5.."' in promql:
        return total * (1 - (1 + _spread(job[1], 9)) / 10_000)
    le = re.search(r'le="([\d.]+)"', promql)
    return total * (1 - 0.01 / float(le[1])) if le else float(total)


def value_text(promql: str) -> str:
    """The sample's value as Prometheus sends it: a string."""
    return repr(count(promql))


class FakePrometheus(BaseHTTPRequestHandler):
    """GET /api/v1/query only; counts requests, distinct queries and connections."""

    protocol_version = "HTTP/1.1"  # keep-alive, as Prometheus does
    disable_nagle_algorithm = True  # else the body waits ~40 ms for the client's delayed ACK
    latency = 0.05
    queries: ClassVar[Counter[str]] = Counter()
    connections = 0
    unexpected = 0
    lock = threading.Lock()

    @classmethod
    def reset(cls) -> None:
        with cls.lock:
            cls.queries.clear()
            cls.connections = cls.unexpected = 0

    def setup(self) -> None:
        super().setup()
        with self.lock:
            type(self).connections += 1

    def _send(self, status: int, data: object) -> None:
        body = json.dumps(data, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        time.sleep(self.latency)
        url = urlparse(self.path)
        promql = parse_qs(url.query).get("query", [""])[0]
        try:
            if url.path != "/api/v1/query":
                raise ValueError(f"{url.path} is not served")
            value = value_text(promql)
        except ValueError as exc:
            with self.lock:
                type(self).unexpected += 1
            error = {"status": "error", "errorType": "bad_data", "error": str(exc)}
            return self._send(400, error)
        with self.lock:
            self.queries[promql] += 1
        sample = {"metric": {}, "value": [round(time.time(), 3), value]}
        result = {"resultType": "vector", "result": [sample]}
        self._send(200, {"status": "success", "data": result})

    def log_message(self, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 drops SYNs: 1 s connect stalls


def serve(latency: float) -> tuple[Server, str]:
    """A running fake on 127.0.0.1 and its base URL."""
    FakePrometheus.latency = latency
    server = Server(("127.0.0.1", 0), FakePrometheus)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
