"""PyGithub set up the way okrsync needs it; imported only once a GitHub source is measured,
so validating a config never pays for importing PyGithub.

See connectors/github.py for why each setting is what it is.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from github import Auth, Github, GithubException
from github.Requester import HTTPRequestsConnectionClass, HTTPSRequestsConnectionClass

from ._http import USER_AGENT
from ._transport import mount

__all__ = ["GithubException", "client"]


class _HTTPConnection(HTTPRequestsConnectionClass):
    """PyGithub's http connection, its requests session on okrsync's bounded transport."""

    bounds: ClassVar[tuple[float, int, str]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        mount(self.session, *self.bounds)


class _HTTPSConnection(HTTPSRequestsConnectionClass):
    """PyGithub's https connection, its requests session on okrsync's bounded transport."""

    bounds: ClassVar[tuple[float, int, str]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        mount(self.session, *self.bounds)


def client(base: str, token: str | None, timeout: float, max_bytes: int, per_page: int) -> Github:
    """A PyGithub client for `base` with no retries or throttle of its own, whose requests go
    through okrsync's bounded transport (one deadline per request, `max_bytes` per answer)."""
    gh = Github(
        auth=Auth.Token(token) if token else None,
        base_url=base,
        timeout=max(1, math.ceil(timeout)),  # PyGithub insists on an int
        user_agent=USER_AGENT,
        per_page=per_page,
        retry=None,  # okrsync.measure.retry is the one retry layer
        seconds_between_requests=None,  # the connector's RateLimiter is the one throttle
        seconds_between_writes=None,
    )
    plain = base.startswith("http://")
    connection = _HTTPConnection if plain else _HTTPSConnection
    bounded = type(connection.__name__, (connection,), {"bounds": (timeout, max_bytes, base)})
    setattr(gh.requester, "_Requester__connectionClass", bounded)  # noqa: B010
    return gh
