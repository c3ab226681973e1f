"""What the daemon runs with: one loaded config, its definitions, Measurer and lanes."""

from __future__ import annotations

from dataclasses import dataclass

from okrsync.config.loader import Config
from okrsync.config.model import KeyResult
from okrsync.measure.measurer import Measurer
from okrsync.progress.definitions import Definitions
from okrsync.service.scheduler import Lane


@dataclass
class Active:
    """One loaded config with its Measurer; retired after a reload once its batches end."""

    config: Config
    defs: Definitions
    measurer: Measurer
    krs: dict[str, KeyResult]
    lanes: dict[str, Lane]
    users: int = 0
    retired: bool = False
    idle_logged: str | None = None
    commit: str | None = None
    """The config directory's git commit when it was loaded (recorded with each run)."""

    def release(self, users: int) -> None:
        """Drop `users` uses (with the daemon's lock held); close a retired config unused."""
        self.users -= users
        if self.retired and self.users == 0:
            self.measurer.close()
