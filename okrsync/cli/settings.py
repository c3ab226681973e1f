"""Settings from the environment (prefix OKRSYNC_), overridden by command-line flags."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """OKRSYNC_CONFIG, OKRSYNC_DB, OKRSYNC_LOG_LEVEL, OKRSYNC_LOG_FORMAT, OKRSYNC_LISTEN."""

    model_config = SettingsConfigDict(env_prefix="OKRSYNC_", extra="ignore")

    config: Path = Path("config")
    db: str = "okrsync.db"
    """A SQLite path or a store URL (`okrsync.store.location`): a str, since a Path would
    fold the `//` of `postgresql://`."""
    log_level: Literal["debug", "info", "warning", "error"] = "warning"
    log_format: Literal["auto", "console", "json"] = "auto"
    listen: str = "127.0.0.1:9464"
