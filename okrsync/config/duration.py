"""Durations as people write them in YAML: `30s`, `5m`, `1h`, `1d`, `1h30m`."""

from __future__ import annotations

import re

PATTERN = r"^\s*(\d+(\.\d+)?\s*[smhdw]\s*)+$"
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str, minimum: float = 1.0) -> float:
    """Seconds in `text`; ValueError naming the accepted forms when it is not a duration."""
    if not re.match(PATTERN, text):
        raise ValueError(f"'{text}' is not a duration: write e.g. 30s, 5m, 1h, 1d or 1h30m")
    seconds = sum(float(n) * _UNIT[u] for n, u in _PART.findall(text))
    if seconds < minimum:
        raise ValueError(f"'{text}' is shorter than the {minimum:g}s minimum")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact form of `seconds`: 3600 -> '1h', 90 -> '1m30s'."""
    rest, parts = int(seconds), []
    for unit in ("d", "h", "m", "s"):
        n, rest = divmod(rest, _UNIT[unit])
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts) or "0s"
