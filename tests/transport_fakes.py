"""Loopback fakes for the transport tests: raw-socket HTTP servers on 127.0.0.1 that answer
slowly, hugely, brokenly or with a redirect. Each is bounded (a request cap and a lifetime),
runs on daemon threads and stops when its `with` block ends."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

LIFETIME = 20.0  # seconds a fake serves at most
MAX_REQUESTS = 10
STEP = 0.4  # seconds between dripped bytes


@dataclass
class Seen:
    """One request a fake received."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names


Script = Callable[[socket.socket, Seen], None]


@dataclass
class Fake:
    """A running fake: its base URL and the requests it saw."""

    url: str
    seen: list[Seen] = field(default_factory=list)


def _read_head(conn: socket.socket) -> Seen | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > 1_000_000:
            return None
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return Seen(method, path, headers)


@contextmanager
def serve(script: Script, max_requests: int = MAX_REQUESTS) -> Iterator[Fake]:
    """Serve `script` (it writes the raw answer to the socket) on a loopback port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    fake = Fake(f"http://127.0.0.1:{listener.getsockname()[1]}")
    stop = threading.Event()
    until = time.monotonic() + LIFETIME

    def handle(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                request = _read_head(conn)
                if request is None:
                    return
                fake.seen.append(request)
                script(conn, request)
            except OSError:
                pass  # the client gave up: that is what most scripts are for

    def accept() -> None:
        served = 0
        while not stop.is_set() and time.monotonic() < until and served < max_requests:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            served += 1
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        stop.set()
        thread.join(2)
        listener.close()


def head(
    status: int = 200, headers: dict[str, str] | None = None, length: int | None = None
) -> bytes:
    """A status line and headers, ending with the blank line."""
    lines = [f"HTTP/1.1 {status} X", "Content-Type: application/json", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Script:
    """Answer a JSON body at once."""
    raw = json.dumps(body).encode()

    def script(conn: socket.socket, _seen: Seen) -> None:
        conn.sendall(head(status, headers, len(raw)) + raw)

    return script


def drip_body(steps: int = 40, step: float = STEP) -> Script:
    """Send the headers at once, then the body one byte every `step` seconds."""

    def script(conn: socket.socket, _seen: Seen) -> None:
        conn.sendall(head(200, length=steps))
        for _step in range(steps):
            time.sleep(step)
            conn.sendall(b" ")

    return script


def drip_headers(steps: int = 40, step: float = STEP) -> Script:
    """Send the status line, then header bytes one every `step` seconds, never finishing."""

    def script(conn: socket.socket, _seen: Seen) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        for _step in range(steps):
            time.sleep(step)
            conn.sendall(b"X")

    return script


def reset_mid_body() -> Script:
    """Promise 1000 bytes, send 20, then reset the connection (RST, not FIN)."""

    def script(conn: socket.socket, _seen: Seen) -> None:
        conn.sendall(head(200, length=1000) + b'{"status": "success"')
        time.sleep(0.05)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    return script


def zeros(size: int, chunk: int = 1 << 20) -> Script:
    """A plain body of `size` zero bytes, sent in chunks while the client reads."""

    def script(conn: socket.socket, _seen: Seen) -> None:
        conn.sendall(head(200, length=size))
        block = bytes(chunk)
        for _block in range(size // chunk):
            conn.sendall(block)

    return script


def gzip_of_zeros(size: int) -> bytes:
    """gzip of `size` zero bytes, made a megabyte at a time (a ~1000:1 'bomb')."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    parts = [packer.compress(block) for _ in range(size // len(block))]
    return b"".join([*parts, packer.flush()])


def gzipped(blob: bytes) -> Script:
    """Send `blob` as a gzip-encoded answer."""

    def script(conn: socket.socket, _seen: Seen) -> None:
        conn.sendall(head(200, {"Content-Encoding": "gzip"}, len(blob)) + blob)

    return script


def redirect(to: str, status: int = 307) -> Script:
    """Redirect to `to` plus the request's path."""

    def script(conn: socket.socket, seen: Seen) -> None:
        conn.sendall(head(status, {"Location": to + seen.path}, 0))

    return script
