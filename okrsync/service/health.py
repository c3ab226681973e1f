"""The daemon's HTTP endpoint: /healthz (liveness), /readyz (readiness), /metrics, and
/report (the HTML report) when given.

Liveness stays 200 while the process serves: a bad config file is reported in the body,
because a restart would not fix it.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from okrsync.errors import UsageError


def parse_listen(listen: str) -> tuple[str, int]:
    """`host:port` (IPv6 as `[::]:9464`) -> (host, port); a UsageError names the flag."""
    host, sep, port = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit() or not host or int(port) > 65535:
        raise UsageError(
            f"--listen '{listen}': write HOST:PORT, e.g. 127.0.0.1:9464 or 0.0.0.0:9464"
        )
    return host, int(port)


Report = Callable[[str], tuple[int, str, bytes]]
"""GET /report: the query string -> (status, content type, body)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class HealthServer:
    """Serves the three endpoints from a background thread until `close()`."""

    def __init__(
        self,
        listen: str,
        health: Callable[[], dict[str, Any]],
        ready: Callable[[], dict[str, Any]],
        registry: CollectorRegistry,
        report: Report | None = None,
    ) -> None:
        host, port = parse_listen(listen)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server = type("Server", (_Server,), {"address_family": family})
        try:
            self._server = server((host, port), _handler(health, ready, registry, report))
        except OSError as exc:
            raise UsageError(f"--listen {listen}: cannot listen there: {exc.strerror}") from None
        self.port = int(self._server.server_address[1])
        self.address = (
            f"[{host}]:{self.port}" if family == socket.AF_INET6 else f"{host}:{self.port}"
        )
        """Where it really listens: with port 0 the port the system chose."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="okrsync-http", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(
    health: Callable[[], dict[str, Any]],
    ready: Callable[[], dict[str, Any]],
    registry: CollectorRegistry,
    report: Report | None = None,
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "okrsync"

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            if path == "/healthz":
                self._json(200, health())
            elif path == "/readyz":
                body = ready()
                self._json(200 if body.get("ready") else 503, body)
            elif path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            elif path == "/report" and report is not None:
                self._send(*report(query))
            else:
                where = "/healthz, /readyz, /metrics" + (" or /report" if report else "")
                self._json(404, {"error": f"not found: try {where}"})

        def _json(self, code: int, body: dict[str, Any]) -> None:
            self._send(code, "application/json", json.dumps(body, indent=1).encode() + b"\n")

        def _send(self, code: int, kind: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # probes are not news
            pass

    return Handler


@dataclass
class HealthState:
    """What /healthz and /readyz report: the running config, the last reload, the store."""

    digest: str | None = None
    loaded_at: float | None = None
    reload_ok: bool = False
    reload_at: float | None = None
    problems: list[str] = field(default_factory=list)
    store_ok: bool = False
    store_error: str | None = None
    """Why the store could not be opened yet (`okrsync run` waits for it)."""
    watch: str = "off"
    period: str | None = None
    period_ended: bool = False

    def loaded(self, digest: str, at: float) -> None:
        self.digest, self.loaded_at, self.reload_ok, self.reload_at = digest, at, True, at
        self.problems = []

    def down(self, error: str) -> None:
        self.store_ok, self.store_error = False, error

    def rejected(self, problems: list[str], at: float) -> None:
        self.reload_ok, self.reload_at, self.problems = False, at, problems

    def healthz(self) -> dict[str, Any]:
        """Liveness body: always `ok` while serving; a rejected config is shown, not fatal."""
        return {
            "status": "ok",
            "config": {
                "hash": self.digest,
                "loaded_at": _iso(self.loaded_at),
                "last_reload_successful": self.reload_ok,
                "last_reload_at": _iso(self.reload_at),
                "errors": self.problems,
                "watch": self.watch,
            },
            "store_writable": self.store_ok,
            "period": self.period,
            "period_ended": self.period_ended,
        }

    def readyz(self) -> dict[str, Any]:
        """Readiness: a config is loaded and the last write to the store succeeded."""
        loaded = self.digest is not None
        return {
            "ready": loaded and self.store_ok,
            "config_loaded": loaded,
            "store_writable": self.store_ok,
        } | ({"store_error": self.store_error} if self.store_error and not self.store_ok else {})


def _iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return datetime.fromtimestamp(stamp, UTC).isoformat().replace("+00:00", "Z")
