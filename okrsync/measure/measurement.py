"""The one record of a measurement, from the measurer (or a check-in) to the store and sinks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


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

    @property
    def failed(self) -> bool:
        return self.error is not None
