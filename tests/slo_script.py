"""Scripted answers for SLO KRs: the config of tests/test_slo.py and counts per window."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

NOW = datetime(2026, 11, 15, 12, tzinfo=UTC)
ELAPSED = "3931200s"  # 2026-10-01 to 2026-11-15 12:00 UTC, in seconds
GOOD = 'sum(increase(req{job="JOB",code!~"5.."}[W]))'
BAD = 'sum(increase(req{job="JOB",code=~"5.."}[W]))'
TOTAL = 'sum(increase(req{job="JOB"}[W]))'
CONFIG = """\
period: {name: Q4, start: 2026-10-01, end: 2026-12-31}
sources:
  prom: {type: prometheus, url: "http://127.0.0.1:1"}
objectives:
  - id: reliability
    title: Reliable checkout
    key_results:
      - id: checkout
        source: prom
        slo:
          good: 'sum(increase(req{job="checkout",code!~"5.."}[{window}]))'
          total: 'sum(increase(req{job="checkout"}[{window}]))'
          objective: 99.9
        start: 99.0
      - id: search
        source: prom
        slo:
          errors: 'sum(increase(req{job="search",code=~"5.."}[{window}]))'
          total: 'sum(increase(req{job="search"}[{window}]))'
          objective: 99
          window: 28d
"""


def answers(
    job: str, counts: dict[str, tuple[float, float]], errors: bool = False
) -> dict[str, Any]:
    """Scripted answers for one job: window -> (good or errors, total)."""
    events = BAD if errors else GOOD
    out: dict[str, Any] = {}
    for window, (part, total) in counts.items():
        out[events.replace("JOB", job).replace("W", window)] = part
        out[TOTAL.replace("JOB", job).replace("W", window)] = total
    return out


def healthy(job: str, window: str = ELAPSED, errors: bool = False) -> dict[str, Any]:
    """Met over the window (99.96%), calm in every burn window (99.99%)."""
    counts = {window: (400.0 if errors else 999_600.0, 1_000_000.0)}
    counts |= {w: (1.0 if errors else 9_999.0, 10_000.0) for w in ("5m", "30m", "1h", "6h")}
    return answers(job, counts, errors)
