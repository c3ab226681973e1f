"""A real webhook receiver on 127.0.0.1 for the delivery tests and the benchmark.

`script` holds what to do with the next requests, one item each: "500", "429:SECONDS"
(Retry-After), "hang:SECONDS" (answer nothing for that long), "close" (drop the
connection unanswered), "400:BODY"; when it is empty every request gets 200. "slow:SECONDS"
stays: it and every later request are answered 200 after SECONDS.
"""

from __future__ import annotations

import http.server
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Seen:
    key: str
    signature: str | None
    body: bytes
    answered: int | None

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str = ""
    script: list[str] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Event = field(default_factory=threading.Event)

    def next_step(self) -> str:
        with self.lock:
            return self.script.pop(0) if self.script else "200"

    def record(self, seen: Seen) -> None:
        with self.lock:
            self.seen.append(seen)
        self.arrived.set()

    def delivered(self) -> list[Seen]:
        """Requests answered 2xx, in the order they arrived."""
        with self.lock:
            return [s for s in self.seen if s.answered == 200]


def _handler(receiver: Receiver) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            key = self.headers.get("Idempotency-Key", "")
            sig = self.headers.get("X-Okrsync-Signature")
            step = self.next_step()
            kind, _, arg = step.partition(":")
            if kind == "slow":  # every request from now on answered 200 after SECONDS
                receiver.script.insert(0, step)
                time.sleep(float(arg))
                kind = "200"
            elif kind == "hang":
                receiver.record(Seen(key, sig, body, None))
                time.sleep(float(arg))
                return
            if kind == "close":
                receiver.record(Seen(key, sig, body, None))
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            status = int(kind)
            receiver.record(Seen(key, sig, body, status))
            answer = (arg if kind == "400" else "ok").encode()
            self.send_response(status)
            if kind == "429":
                self.send_header("Retry-After", arg)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def next_step(self) -> str:
            return receiver.next_step()

    return Handler


@contextmanager
def receiving(
    script: list[str] | None = None, tls: tuple[Path, Path] | None = None
) -> Iterator[Receiver]:
    """A receiver serving on a free port of 127.0.0.1 until the block ends; over HTTPS
    with `tls` = (certificate, key) PEM files."""
    receiver = Receiver(script=list(script or []))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    receiver.url = f"{scheme}://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
