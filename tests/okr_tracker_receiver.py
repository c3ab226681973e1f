"""A real okr-tracker API on 127.0.0.1, shaped like oslokommune/okr-tracker's
`functions/api/routes/keyres.js` (express-validator rules from `validators.js`) behind
its API gateway (`x-api-key`, public/openapi.yaml).

`POST /api/keyres/{id}`: 401 without the right `x-api-key` (the gateway); 400 `{"message":
"A pair of ..."}` without `okr-client-id`+`okr-client-secret` (or `okr-team-secret`); 400
`{"message": "Invalid request data", "errors": {...}}` unless `progress` is a number >= 0;
404 text for an unknown id; else 200 text. `script` fails the next requests first
("503", "429:SECONDS"); `down` answers 503 to everything.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

API_KEY = "gw-key-0123456789"
CLIENT_ID = "okrsync-client"
CLIENT_SECRET = "client-secret-9876"


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Tracker:
    url: str = ""
    known: set[str] = field(default_factory=lambda: {"kr-8f3a", "kr-2"})
    values: dict[str, list[float]] = field(default_factory=dict)
    script: list[str] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    down: bool = False
    wait: str = "0.1"  # the Retry-After of the last 429
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, str]:
        """(status, content type, text) for one request, as okr-tracker would answer."""
        with self.lock:
            step = self.script.pop(0) if self.script else ""
            if self.down or step == "503":
                return 503, "text/plain", "Service Unavailable"
            if step.startswith("429"):
                self.wait = step.partition(":")[2] or "0.1"
                return 429, "text/plain", "Too many requests, please try again later."
            if headers.get("x-api-key") != API_KEY:
                gate = {
                    "code": 401,
                    "message": "UNAUTHENTICATED: Method doesn't allow unregistered callers",
                }
                return 401, "application/json", json.dumps(gate)
            if not (headers.get("okr-client-id") and headers.get("okr-client-secret")):
                pair = (
                    "A pair of `okr-client-id`/`okr-client-secret` headers or an "
                    "`okr-team-secret` header is required"
                )
                return 400, "application/json", json.dumps({"message": pair})
            kr = path.removeprefix("/api/keyres/")
            progress = json.loads(body or b"{}").get("progress")
            if not isinstance(progress, int | float) or progress < 0:
                error = {"type": "field", "value": progress, "msg": "Invalid value"}
                errors = {"progress": {**error, "path": "progress", "location": "body"}}
                invalid = {"message": "Invalid request data", "errors": errors}
                return 400, "application/json", json.dumps(invalid)
            if kr not in self.known:
                return 404, "text/html; charset=utf-8", f"Could not find KPI with ID: {kr}"
            if headers.get("okr-client-secret") != CLIENT_SECRET:
                wrong = {"message": f"Wrong secret for API client `{headers['okr-client-id']}`"}
                return 401, "application/json", json.dumps(wrong)
            self.values.setdefault(kr, []).append(float(progress))
            return (
                200,
                "text/html; charset=utf-8",
                (f"Updated key result ({kr}) with progress: {progress}"),
            )


def _handler(tracker: Tracker) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, kind, text = tracker.answer(self.path, headers, body)
            with tracker.lock:
                tracker.seen.append(Seen(self.path, headers, body, status))
            data = text.encode()
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", tracker.wait)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def tracking() -> Iterator[Tracker]:
    """An okr-tracker API serving on a free port of 127.0.0.1 until the block ends."""
    tracker = Tracker()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(tracker))
    server.daemon_threads = True
    tracker.url = f"http://127.0.0.1:{server.server_address[1]}/api"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tracker
    finally:
        server.shutdown()
        server.server_close()
