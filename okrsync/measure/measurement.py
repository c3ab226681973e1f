"""The one record of a measurement, from the measurer (or a check-in) to the store and sinks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from okrsync.measure.slo_reading import SloReading


@dataclass(frozen=True)
class Measurement:
    """One attempt to measure a KR, or a check-in: its value or the error that prevented
    it, the exact query behind it, and (once assessed) its progress and status."""

    kr_id: str
    measured_at: datetime
    source: str
    query: str | None
    value: float | None = None
    progress: float | None = None
    status: str | None = None
    inputs: dict[str, float] | None = None
    error: str | None = None
    manual: bool = False
    note: str | None = None
    answer: dict[str, Any] | None = None
    """The source's raw answer, bounded (e.g. {"total": 42}, the series it reduced)."""
    fetched_at: datetime | None = None
    duration_s: float | None = None
    """How long the fetch took, retries included."""
    author: str | None = None
    """Who checked the value in (manual rows)."""
    until: datetime | None = None
    """A manual override of an automated KR holds until then (automation still records)."""
    backfilled: bool = False
    """Measured afterwards for a past instant (`okrsync backfill`), not live."""
    slo: SloReading | None = None
    """An SLO KR's SLI, budget and burn rates (its value is the SLI)."""

    @property
    def failed(self) -> bool:
        return self.error is not None
