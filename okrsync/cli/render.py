"""Human-readable output: the objective tree with progress bars, and history tables."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from okrsync.config.model import Period
from okrsync.numfmt import number
from okrsync.progress.tree import KRView, ObjectiveView, Tree
from okrsync.report.slo import slo_line, slo_part

BAR = 20
MARK = {
    "done": "✔",
    "on_track": "●",
    "at_risk": "▲",
    "off_track": "✖",
    "stale": "◌",
    "no_data": "?",
}


def bar(progress: float | None, width: int = BAR) -> str:
    """`[████████░░░░]` for a progress in [0, 1]; blank dots when there is no data."""
    if progress is None:
        return "[" + "·" * width + "]"
    filled = round(progress * width)
    return "[" + "█" * filled + "░" * (width - filled) + "]"


PERCENT_LIMIT = 10**9  # a raw progress beyond this many percent is shown as this many


def percent(progress: float) -> int:
    """A progress as a whole percentage, rounded half up (0.625 -> 63, not 62); a raw
    progress far past the target (1e307 from a huge value) is capped, never an error."""
    shown = math.floor(progress * 100 + 0.5 + 1e-9) if math.isfinite(progress * 100) else None
    if shown is None or abs(shown) > PERCENT_LIMIT:
        return PERCENT_LIMIT if progress > 0 else -PERCENT_LIMIT
    return shown


def pct(progress: float | None) -> str:
    return "  –  " if progress is None else f"{percent(progress):4d}%"


def count(n: int, noun: str) -> str:
    """`1 source`, `2 sources`."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def period_json(period: Period, ended: bool) -> dict[str, Any]:
    return {
        "name": period.name,
        "start": str(period.start),
        "end": str(period.end),
        "timezone": period.timezone,
        "ended": ended,
    }


def status_json(tree: Tree, now: datetime) -> dict[str, Any]:
    """`status --json`: the period, the moment asked for, and the objective tree."""
    return {
        "period": period_json(tree.defs.period, tree.ended),
        "now": iso(now),
        "as_of": iso(tree.now),
        "expected_progress": tree.expected,
        "average_score": tree.average_score,
        "objectives": [o.as_json() for o in tree.roots],
    }


def score(value: float | None) -> str:
    return "  –  " if value is None else f"{value:.2f}"


def status_text(tree: Tree) -> str:
    """The whole tree as text, period header first; an ended period shows its grades."""
    period = tree.defs.period
    if tree.ended:
        state = f"ended, graded: average score {score(tree.average_score).strip()}"
    else:
        state = f"expected progress {pct(tree.expected).strip()}"
    lines = [
        f"{period.name}  {period.start} → {period.end}   as of "
        f"{tree.now.strftime('%Y-%m-%d %H:%M UTC')}   {state}",
        "",
    ]
    stack = [(root, 0) for root in reversed(tree.roots)]
    while stack:
        view, depth = stack.pop()
        _objective(view, depth, lines, tree.ended)
        stack.extend((child, depth + 1) for child in reversed(view.children))
    if not tree.roots:
        lines.append("(no objectives in config)")
    return "\n".join(lines)


GRADE_MARK = {"good": "✔", "met": "✔", "fair": "▲", "poor": "✖", "missed": "✖", None: "?"}


def _verdict(status: str, score_: float | None, grade: str | None, ended: bool) -> str:
    """The status word while a period runs; its score and grade once it has ended."""
    if ended:
        return f"score {score(score_).strip():<4} {grade or 'no_data':<7}"
    return status


def _mark(status: str, grade: str | None, ended: bool) -> str:
    return GRADE_MARK.get(grade, "?") if ended else MARK[status]


def _objective(view: ObjectiveView, depth: int, lines: list[str], ended: bool) -> None:
    pad = "  " * depth
    o = view.objective
    owner = f"  @{o.owner}" if o.owner else ""
    gaps = f"  ({view.without_data} of {view.items} without data)" if view.without_data else ""
    verdict = _verdict(view.status, view.score, view.grade, ended)
    lines.append(f"{pad}{_mark(view.status, view.grade, ended)} {o.title}  [{o.id}]{owner}")
    lines.append(f"{pad}  {bar(view.progress)} {pct(view.progress)}  {verdict}{gaps}".rstrip())
    for kr in view.key_results:
        _kr(kr, depth + 1, lines, ended)


def _kr(view: KRView, depth: int, lines: list[str], ended: bool) -> None:
    pad = "  " * depth
    kr = view.kr
    value = number(view.obs.value, kr.unit)
    start = "previous" if kr.start is None else number(kr.start, None)
    goal = f"{start} → {number(kr.target, kr.unit)}"
    manual = " (manual)" if view.obs.manual and not kr.is_manual else ""
    if view.obs.backfilled:
        manual = " (backfilled)"
    if view.obs.until is not None:
        manual = f" (override until {iso(view.obs.until)})"
    verdict = _verdict(view.status, view.score, view.grade, ended)
    kind = "  committed" if kr.kind == "committed" else ""
    mark = _mark(view.status, view.grade, ended)
    lines.append(f"{pad}{mark} {kr.title or kr.id}  [{kr.id}]{kind}")
    lines.append(
        f"{pad}  {bar(view.progress)} {pct(view.progress)}  {verdict:<9} "
        f"{value}{manual}  (goal {goal})"
    )
    slo = slo_part(view)
    if slo is not None:
        lines.append(f"{pad}  {slo_line(slo)}")
    if view.obs.value is None and view.previous is not None:
        lines.append(
            f"{pad}  last period: {number(view.previous.value, kr.unit)} "
            f"({view.previous.period}, score {score(view.previous.score).strip()})"
        )
    if view.error and (view.status in ("stale", "no_data")):
        lines.append(f"{pad}  ! {view.error}")


def _manual(row: dict[str, Any]) -> str:
    """`manual by ana until 2026-12-01T00:00:00Z: exporter broken` for a check-in row."""
    who = f" by {row['author']}" if row.get("author") else ""
    until = f" until {row['until']}" if row.get("until") else ""
    return f"manual{who}{until}" + (f": {row['note']}" if row["note"] else "")


def history_text(kr_id: str, rows: Iterable[dict[str, Any]]) -> str:
    return "\n".join(history_lines(kr_id, rows))


def _flags(row: dict[str, Any]) -> str:
    """`[backfilled] `, `[backfilled, superseded] ` (re-measured by `backfill --replace`,
    not shown by status), or nothing for a live row."""
    flags = [f for f in ("backfilled", "superseded") if row.get(f)]
    return f"[{', '.join(flags)}] " if flags else ""


def _slo_counts(row: dict[str, Any]) -> str | None:
    """`good 999,600 / total 1,000,000 over 3931200s, budget 0.6 left` for an SLO row."""
    slo = row.get("slo")
    if not slo:
        return None
    return (
        f"good {number(slo['good'])} / total {number(slo['total'])} over {slo['rendered_window']}, "
        f"budget {slo['error_budget_remaining']:.3g} left"
        + (", burn alert firing" if slo["alerts_firing"] else "")
    )


def history_lines(kr_id: str, rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The history table one line at a time (a long history streams); a backfilled or
    superseded row says so before its source."""
    empty = True
    for r in rows:
        if empty:
            yield f"{'measured_at':<27} {'value':>12} {'progress':>8}  {'status':<9} source / error"
            empty = False
        progress = "" if r["progress"] is None else f"{percent(r['progress'])}%"
        detail = _flags(r) + (
            r["error"]
            or (_manual(r) if r["manual"] else _slo_counts(r) or r["query"] or r["source"])
        )
        value = "" if r["value"] is None else f"{r['value']:,.6g}"
        yield f"{r['measured_at']:<27} {value:>12} {progress:>8}  {r['status'] or '':<9} {detail}"
    if empty:
        yield f"{kr_id}: no measurements yet"


def json_array_lines(rows: Iterable[Any]) -> Iterator[str]:
    """A JSON array of `rows`, one row a line, in pieces (to write one after the other, as
    they are), without holding the list."""
    empty = True
    for row in rows:
        head = "[\n  " if empty else ",\n  "
        empty = False
        yield head + json.dumps(row)
    yield "[]" if empty else "\n]"
