"""Typed errors, sorted by what the caller should do with them (fix config, retry, give up)."""

from __future__ import annotations

from dataclasses import dataclass


class OkrsyncError(Exception):
    """Base of every error okrsync reports to a person; its str() is the whole message."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a config file, located for the person editing it."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(OkrsyncError):
    """The config is invalid; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class FetchError(OkrsyncError):
    """A source could not give a value for a query; `retryable` tells the retry policy."""

    retryable = False


class TransientFetchError(FetchError):
    """A failure that may pass: connection refused, timeout, 5xx.

    `retry_after` is the server's requested wait in seconds (Retry-After), if it said.
    """

    retryable = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimitedError(TransientFetchError):
    """The source asked us to slow down (429, or a rate-limit 403)."""


class NoDataError(FetchError):
    """The query matched nothing (e.g. no series): an SLO counts that as no events."""


class AuthError(FetchError):
    """The source refused our credentials; retrying will not help, fixing the env will."""


class StoreError(OkrsyncError):
    """The OKR store cannot be read or written (locked, read-only, newer schema)."""


class UsageError(OkrsyncError):
    """The command was asked for something that does not exist (e.g. an unknown KR id)."""
