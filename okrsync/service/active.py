"""What the daemon runs with: one loaded config, its definitions, Measurer and lanes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog

from okrsync.config.loader import Config
from okrsync.config.model import KeyResult
from okrsync.measure.measurer import Measurer
from okrsync.progress.definitions import Definitions
from okrsync.progress.periods import contains
from okrsync.service.scheduler import Lane

log = structlog.get_logger("okrsync.service.daemon")


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

    def idle(self, now: datetime) -> bool:
        """Whether the config's period is not running at `now`; says so once per config."""
        period = self.config.period
        if contains(period, now):
            return False
        ended = now >= period.ends_at
        state = "ended" if ended else "not_started"
        if self.idle_logged != state:
            self.idle_logged = state
            if ended:
                log.warning(
                    "period_ended",
                    period=period.name,
                    end=str(period.end),
                    action="measuring nothing until the config sets a new period",
                )
            else:
                log.info("period_not_started", period=period.name, start=str(period.start))
        return True
