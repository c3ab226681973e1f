"""Test clocks: pin the CLI's "now", or write a period around the real today.

Many test configs have a fixed period (2026-10-01..2026-12-31). `okrsync sync` takes no --now
(it measures the sources as they are now) and measures nothing outside the config's period,
so a test that syncs on the real clock would start failing once the real date left that
period. Either pin the clock (in-process: `pin_cli_clock`; the Daemon takes `clock=`) or, for
a subprocess on the real clock, give its config a period that contains the real today
(`running_period`, `with_running_period`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from okrsync.cli import moment

# Inside the fixed 2026-Q4 (2026-10-01..2026-12-31) of the test configs.
IN_Q4 = datetime(2026, 11, 15, 12, tzinfo=UTC)

_PERIOD_LINE = re.compile(r"^period: \{name: ([^,]+),[^\n]*\}$", re.MULTILINE)


def pin_cli_clock(monkeypatch: pytest.MonkeyPatch, at: datetime = IN_Q4) -> datetime:
    """Make the in-process CLI's default "now" (no --now / --at given, and sync) `at`."""
    monkeypatch.setattr(moment, "utcnow", lambda: at)
    return at


def running_period(name: str = "2026-Q4") -> str:
    """A `period:` line (with newline) from 60 days before the real today to 30 days after."""
    today = datetime.now(UTC).date()
    start, end = today - timedelta(days=60), today + timedelta(days=30)
    return f"period: {{name: {name}, start: {start.isoformat()}, end: {end.isoformat()}}}\n"


def with_running_period(config: str) -> str:
    """`config` with its `period: {name: N, ...}` line replaced by `running_period(N)`."""
    found = _PERIOD_LINE.search(config)
    assert found, "no one-line `period: {name: ...}` in the config"
    return config[: found.start()] + running_period(found[1]).rstrip("\n") + config[found.end() :]
