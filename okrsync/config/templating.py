"""Query placeholders `{period.start}`, `{period.end}`, `{period.name}`, `{now}`.

Only these exact tokens are replaced, so PromQL's own braces (`up{job="api"}`) are safe.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

PLACEHOLDER = re.compile(r"\{(period\.[a-z_]+|now)\}")
KNOWN = ("period.start", "period.end", "period.name", "now")
WINDOW = re.compile(r"\{(window)\}")
"""An SLO query's `{window}`, filled per window before the placeholders above."""


def unknown_placeholders(text: str) -> list[str]:
    """Placeholders in `text` that okrsync would not fill (typos like `{period.begin}`)."""
    return [m for m in PLACEHOLDER.findall(text) if m not in KNOWN]


def variables(name: str, start: date, end: date, today: date) -> dict[str, str]:
    """The values placeholders take for a period as of `today`."""
    return {
        "period.start": start.isoformat(),
        "period.end": end.isoformat(),
        "period.name": name,
        "now": today.isoformat(),
    }


def render(value: Any, values: Mapping[str, str], pattern: re.Pattern[str] = PLACEHOLDER) -> Any:
    """`value` with placeholders filled, recursing into dicts and lists (HTTP bodies);
    `pattern` says which (default: the period and `{now}`; an SLO's `{window}`)."""
    if isinstance(value, str):
        return pattern.sub(lambda m: values.get(m.group(1), m.group(0)), value)
    if isinstance(value, dict):
        return {k: render(v, values, pattern) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, values, pattern) for v in value]
    return value
