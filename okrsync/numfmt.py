"""Numbers as people read them, the same in the terminal, the report and the sinks' texts."""

from __future__ import annotations

import math


def number(value: float | None, unit: str | None = None) -> str:
    """54,321 and 99.95, never 5.432e+04; past 1e15 (or not finite) digits are noise,
    so 1.2e+308; a dash for no value."""
    if value is None:
        return "–"
    if not math.isfinite(value) or abs(value) >= 1e15:
        text = f"{value:.4g}"
    elif value == int(value) or abs(value) >= 1000:
        text = f"{value:,.0f}"
    else:
        text = f"{value:,.4g}" if abs(value) >= 1 else f"{value:.4g}"
    return f"{text} {unit}".strip() if unit else text
