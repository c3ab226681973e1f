"""The one HTTP transport under every connector's requests session (the jira library's and
PyGithub's too): a deadline for the whole request, a byte cap on the body, a lost
connection reported as one, and no credentials sent to another origin.

* Deadline: `timeout` seconds for connect, headers and body together. Every socket read
  waits at most the time left (so headers dripping a byte at a time cannot outlast it),
  and the body is read in chunks with the clock checked after each. No threads.
* Byte cap: the body is counted after decompression (urllib3 decompresses a bounded amount
  per read), so a gzip bomb stops at `max_response_bytes` without being inflated whole.
* The body is read here, then stored as `response._content`: callers use `.json()` and
  `.text` as usual, and no connection is left half read.
* Credentials stay on the source's origin: a request to another scheme, host or port (only
  a redirect sends one) goes without Authorization, Cookie, the connector's secret headers,
  or any header holding a secret okrsync read.
"""

from __future__ import annotations

import http.client
import io
import threading
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError, SSLError

from okrsync.secrets import redact

CHUNK = 64 * 1024
ALWAYS_SECRET = frozenset({"authorization", "cookie"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


class ResponseTooLarge(requests.RequestException):
    """The body grew past the source's `max_response_bytes` (counted after decompression)."""


class ConnectionLost(requests.ConnectionError):
    """The connection closed or was reset while the answer was being read."""


class _Deadline(threading.local):
    """The deadline (time.monotonic) of the request this thread is sending, if any."""

    at: float | None = None
    # where this thread's last answer redirected to, and that request's deadline: following
    # the redirect is the same request, so it gets no fresh deadline
    redirect: tuple[str, float] | None = None


_current = _Deadline()


class _DeadlineReader(io.RawIOBase):
    """A socket's raw reader whose every read waits at most until the deadline."""

    def __init__(self, sock: Any, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request's deadline passed")
        self._sock.settimeout(left)
        result: int | None = self._raw.readinto(buffer)
        return result

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    """http.client's response, reading status line, headers and body under the deadline."""

    def __init__(self, sock: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        if _current.at is not None:
            self.fp.close()
            self.fp = io.BufferedReader(_DeadlineReader(sock, _current.at))


class _HTTPConnection(HTTPConnection):
    response_class = _DeadlineResponse


class _HTTPSConnection(HTTPSConnection):
    response_class = _DeadlineResponse


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


POOLS: dict[str, type[HTTPConnectionPool]] = {"http": _HTTPPool, "https": _HTTPSPool}


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


def _place(url: str) -> str:
    """Origin and path of `url`: enough to know a request follows a redirect."""
    scheme, host, port = origin(url)
    return f"{scheme}://{host}:{port}{urlsplit(url).path or '/'}"


def megabytes(size: int) -> str:
    """10_000_000 -> '10 MB'; small caps in bytes."""
    return f"{size / 1e6:g} MB" if size >= 100_000 else f"{size} bytes"


class BoundedAdapter(HTTPAdapter):
    """An HTTPAdapter enforcing one source's deadline, byte cap and origin (module doc)."""

    def __init__(
        self,
        timeout: float,
        max_bytes: int,
        home: str | None = None,
        secret_headers: Iterable[str] = (),
        **kwargs: Any,
    ) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.home = origin(home) if home else None
        self.secret_headers = {name.lower() for name in secret_headers}
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if hasattr(manager, "pool_classes_by_scheme"):
            manager.pool_classes_by_scheme = POOLS
        return manager

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        """Send under the deadline, then read the whole body under the deadline and cap."""
        self._keep_credentials_home(request)
        now = time.monotonic()
        follows, _current.redirect = _current.redirect, None
        deadline = now + self.timeout
        if follows is not None and follows[0] == _place(request.url or ""):
            deadline = min(deadline, follows[1])
        left = deadline - now
        if left <= 0:
            raise requests.ReadTimeout("the request's deadline passed", request=request)
        outer, _current.at = _current.at, deadline
        try:
            response = super().send(
                request,
                stream=True,
                timeout=(left, left),
                verify=verify,
                cert=cert,
                proxies=proxies,
            )
        finally:
            _current.at = outer
        try:
            self._read_body(response, deadline)
        except BaseException:
            response.close()
            raise
        if response.is_redirect:
            target = urljoin(response.url, response.headers["location"])
            _current.redirect = (_place(target), deadline)
        return response

    def _keep_credentials_home(self, request: requests.PreparedRequest) -> None:
        if self.home is None or request.url is None or origin(request.url) == self.home:
            return
        for name in list(request.headers):
            value = str(request.headers[name])
            lower = name.lower()
            if lower in ALWAYS_SECRET or lower in self.secret_headers or redact(value) != value:
                del request.headers[name]

    def _read_body(self, response: requests.Response, deadline: float) -> None:
        if getattr(response, "_content_consumed", False):  # a test double read it already
            if len(response.content or b"") > self.max_bytes:
                raise self._too_large(response.request)
            return
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.raw.stream(CHUNK, decode_content=True):
                size += len(chunk)
                if size > self.max_bytes:
                    raise self._too_large(response.request)
                if time.monotonic() > deadline:
                    raise requests.ReadTimeout("the request's deadline passed")
                chunks.append(chunk)
        except requests.RequestException:
            raise
        except (TimeoutError, ReadTimeoutError) as exc:
            raise requests.ReadTimeout(str(exc)) from None
        except DecodeError as exc:
            raise requests.exceptions.ContentDecodingError(str(exc)) from None
        except (ProtocolError, SSLError, OSError, http.client.HTTPException) as exc:
            raise ConnectionLost(str(exc)) from None
        response._content = b"".join(chunks)
        vars(response)["_content_consumed"] = True  # as requests marks a body it has read

    def _too_large(self, request: Any) -> ResponseTooLarge:
        return ResponseTooLarge(f"answer larger than {megabytes(self.max_bytes)}", request=request)


def mount(
    session: requests.Session,
    timeout: float,
    max_bytes: int,
    home: str | None = None,
    secret_headers: Iterable[str] = (),
) -> BoundedAdapter:
    """Route every http(s) request of `session` through one BoundedAdapter."""
    adapter = BoundedAdapter(timeout, max_bytes, home, secret_headers)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return adapter
