"""What `okrsync run` was asked to do: its flags and settings, as the daemon takes them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class Options:
    config: Path
    db: str | Path
    """A SQLite path or a store URL (`okrsync.store.location`)."""
    listen: str | None = "127.0.0.1:9464"
    grace: float = 10.0
    workers: int = 8
    watch: str = "auto"
    poll_interval: float = 2.0
    lease: float = 15.0  # seconds of the leader lease, renewed every third of it
