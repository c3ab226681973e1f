"""The report as Markdown, for a wiki page or a pull-request comment: text bars, tables,
text sparklines; no HTML. Text from config and store is escaped so it stays text."""

from __future__ import annotations

import re

from okrsync.numfmt import number
from okrsync.progress.tree import ObjectiveView
from okrsync.report.forecast import METHOD
from okrsync.report.model import KRReport, Report, by_owner
from okrsync.report.slo import slo_line
from okrsync.report.text import LABEL, bar, change, goal, no_values, outlook, percent, spark, when

_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")


def esc(text: str | None) -> str:
    """Text as Markdown shows it literally: markup characters backslashed, `<`, `>` and
    `&` as entities (so `<script>` is shown, never run), one line."""
    if not text:
        return ""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _kr_name(k: KRReport) -> str:
    kr = k.view.kr
    return f"{esc(kr.title or kr.id)} (`{kr.id}`)" if kr.title else f"`{kr.id}`"


def _header(report: Report) -> list[str]:
    tree = report.tree
    p = tree.defs.period
    krs = report.key_results()
    counts: dict[str, int] = {}
    for k in krs:
        counts[k.view.status] = counts.get(k.view.status, 0) + 1
    summary = ", ".join(f"{n} {LABEL[s]}" for s, n in counts.items())
    state = "ended, values final" if tree.ended else f"expected progress {percent(tree.expected)}"
    lines = [
        f"# OKR report {esc(p.name)} ({p.start} to {p.end})",
        "",
        f"As of {when(tree.now)}; {state}. {len(krs)} key result{'' if len(krs) == 1 else 's'}"
        + (f": {summary}." if krs else "."),
    ]
    if report.filters.describe():
        lines.append(f"Filtered by {esc(report.filters.describe())}.")
    empty = no_values(report)
    if empty:
        lines += ["", f"**{esc(empty)}**"]
    return [*lines, ""]


def _attention(report: Report) -> list[str]:
    found = report.attention()
    lines = ["## Needs attention", ""]
    if not found:
        return [*lines, "Nothing stale, failing or without data.", ""]
    lines += ["| key result | objective | status | last value | measured | last error |"]
    lines += ["|---|---|---|---|---|---|"]
    for k in found:
        measured = k.view.obs.measured_at
        lines.append(
            f"| {_kr_name(k)} | `{k.objective.objective.id}` | {LABEL[k.view.status]} | "
            f"{esc(number(k.view.obs.value, k.view.kr.unit))} | "
            f"{when(measured) if measured else 'never'} | "
            f"{esc(k.view.error) or '–'} |"
        )
    return [*lines, ""]


def _changes(report: Report) -> list[str]:
    lines = [f"## What changed since {when(report.since)}", ""]
    found = report.changes()
    if not found:
        return [*lines, "No value or status changed.", ""]
    lines += ["| key result | value | progress | status |", "|---|---|---|---|"]
    for k in found:
        value, progress, status = change(k)
        lines.append(f"| {_kr_name(k)} | {esc(value)} | {progress} | {status} |")
    return [*lines, ""]


def _owners(report: Report) -> list[str]:
    groups = by_owner(report)
    if len(groups) < 2:
        return []
    lines = ["## By owner", "", "| owner | key results | mean progress | needing attention |"]
    lines.append("|---|---|---|---|")
    for owner, krs in groups.items():
        known = [k.view.progress for k in krs if k.view.progress is not None]
        mean = sum(known) / len(known) if known else None
        attention = sum(k.view.status in ("stale", "no_data", "off_track") for k in krs)
        lines.append(f"| {esc(owner)} | {len(krs)} | {bar(mean)} {percent(mean)} | {attention} |")
    return [*lines, ""]


def _objective(report: Report, view: ObjectiveView, depth: int) -> list[str]:
    o = view.objective
    owner = f" · owner {esc(o.owner)}" if o.owner else ""
    parent = f" · under `{o.parent}`" if o.parent and depth else ""
    level = "#" * min(3 + depth, 6)
    lines = [
        f"{level} {esc(o.title)} (`{o.id}`)",
        "",
        f"`{bar(view.progress)}` {percent(view.progress)} · {LABEL[view.status]}{owner}{parent}",
        "",
    ]
    if not view.key_results:
        return lines
    lines += ["| key result | progress | value | goal | status | trend | forecast |"]
    lines += ["|---|---|---|---|---|---|---|"]
    for kv in view.key_results:
        k = report.krs[kv.kr.id]
        status = LABEL[kv.status] + (f", {kv.grade}" if report.tree.ended and kv.grade else "")
        lines.append(
            f"| {_kr_name(k)} | `{bar(kv.progress)}` {percent(kv.progress)} | "
            f"{esc(number(kv.obs.value, kv.kr.unit))} | {esc(goal(k))} | {status} | {spark(k)} | "
            f"{esc(outlook(k))} |"
        )
    return [*lines, "", *_slos(report, view)]


def _slos(report: Report, view: ObjectiveView) -> list[str]:
    """Under an objective's table, one line per SLO KR: its SLI, budget (a text bar, empty
    once breached) and burn, in words (a table cell cannot hold them and stay readable)."""
    lines = []
    for kv in view.key_results:
        part = report.krs[kv.kr.id].slo
        if part is not None:
            k = report.krs[kv.kr.id]
            lines.append(f"- {_kr_name(k)} `{bar(part.budget)}` {esc(slo_line(part))}")
    return [*lines, ""] if lines else []


def render(report: Report) -> str:
    lines = _header(report) + _attention(report) + _changes(report) + _owners(report)
    lines += ["## Objectives", ""]
    for view, depth in report.objectives():
        lines += _objective(report, view, depth)
    if not report.roots:
        lines += ["(no objectives)", ""]
    lines += [f"Forecast: {METHOD}. Trend: progress over the period so far."]
    return "\n".join(lines) + "\n"
