"""Timestamps: UTC everywhere, stored as fixed-width ISO text so text order is time order."""

from __future__ import annotations

from datetime import UTC, datetime

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_text(moment: datetime) -> str:
    """`2026-11-26T11:02:25.000000Z` for any aware datetime."""
    return moment.astimezone(UTC).strftime(_FORMAT)


def from_text(text: str) -> datetime:
    return datetime.strptime(text, _FORMAT).replace(tzinfo=UTC)


def parse_instant(text: str) -> datetime:
    """An ISO-8601 date or datetime from the command line; naive means UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except ValueError:
        raise ValueError(
            f"'{text}' is not an ISO-8601 time: write e.g. 2026-11-15 or 2026-11-15T12:00:00Z"
        ) from None
    except OverflowError:
        raise ValueError(f"'{text}' is outside the times okrsync can represent") from None
