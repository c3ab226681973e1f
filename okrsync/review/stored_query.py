"""Reading back a stored query text that names its parts: `a = SOURCE: Q; b = SOURCE: Q`
(a formula's inputs, an SLO's queries), as the measurer writes it."""

from __future__ import annotations

import re


def named_queries(text: str, name: re.Pattern[str]) -> dict[str, tuple[str, str]]:
    """{name: (source, query)} of `text`; a `; ` inside a query stays in it (a part that
    does not start with `NAME = ` continues the one before)."""
    parts: dict[str, str] = {}
    current: str | None = None
    for part in text.split("; "):
        head = name.match(part)
        if head:
            current = head.group(1)
            parts[current] = part[head.end() :]
        elif current is not None:
            parts[current] += "; " + part
    out: dict[str, tuple[str, str]] = {}
    for key, value in parts.items():
        source, _, query = value.partition(": ")
        out[key] = (source, query)
    return out
