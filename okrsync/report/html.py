"""The report as one self-contained HTML page: inline CSS and inline SVG, no script, no
font, image or style loaded from anywhere. Every text from config or store is escaped."""

from __future__ import annotations

from html import escape

from okrsync.numfmt import number
from okrsync.progress.maths import STATUSES, clamp, classify
from okrsync.progress.tree import ObjectiveView
from okrsync.report.forecast import METHOD
from okrsync.report.model import KRReport, Report, by_owner
from okrsync.report.slo import (
    SloPart,
    budget_text,
    firing_text,
    objective_text,
    rates_text,
    sli_text,
)
from okrsync.report.svg import COLOUR, chart
from okrsync.report.text import LABEL, change, goal, no_values, outlook, percent, when

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
color:#1f2328;background:#fff}
main{max-width:1100px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:17px;margin:28px 0 8px;
border-bottom:1px solid #d0d7de;padding-bottom:4px}
.meta{color:#57606a}.chips span{display:inline-block;margin:6px 6px 0 0;padding:1px 8px;
border-radius:10px;color:#fff;font-size:12px}
table{border-collapse:collapse;width:100%;margin:4px 0}th,td{text-align:left;
padding:4px 8px;border-bottom:1px solid #eaeef2;vertical-align:middle}
th{font-size:12px;color:#57606a;font-weight:600}
.bar{display:inline-block;width:120px;height:10px;background:#eaeef2;border-radius:5px;
overflow:hidden;vertical-align:middle;margin-right:6px}.bar i{display:block;height:100%}
.badge{display:inline-block;padding:0 7px;border-radius:9px;color:#fff;font-size:12px;
white-space:nowrap}
.objective{border:1px solid #d0d7de;border-radius:6px;margin:12px 0;padding:8px 12px}
.objective h3{font-size:15px;margin:2px 0 6px}.id{color:#57606a;font:12px ui-monospace,monospace}
.small{font-size:12px;color:#57606a}svg.chart{display:block}
.nw{white-space:nowrap}summary{cursor:pointer;color:#57606a;margin:4px 0}
.slo{margin-top:4px}
"""


FOLD = 20  # a list longer than this starts folded
CSP = "default-src 'none'; style-src 'unsafe-inline'"
"""The page's own policy: no script runs and nothing is fetched, whatever a text holds."""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _bar(progress: float | None, status: str) -> str:
    width = 0 if progress is None else round(clamp(progress) * 100)
    return (
        f'<span class="nw"><span class="bar" title="{percent(progress)}"><i style="width:{width}%;'
        f'background:{COLOUR[status]}"></i></span>{percent(progress)}</span>'
    )


def _budget(part: SloPart, status: str) -> str:
    """The error budget left as a meter (0-100% filled), with its words: an empty bar
    outlined in the off-track colour once breached, its negative number written."""
    said = budget_text(part)
    if part.breached:
        width, colour = 0, COLOUR["off_track"]
        ring = f' style="box-shadow:inset 0 0 0 1px {colour}"'
        words = f'<span style="color:{colour}">{_e(said)}</span>'
    else:
        width = round(clamp(part.budget) * 100)
        shown = status if status in ("on_track", "at_risk", "done") else "on_track"
        colour, ring, words = COLOUR["at_risk" if part.firing else shown], "", _e(said)
    return (
        f'<span class="nw"><span class="bar" role="meter" aria-label="error budget remaining" '
        f'aria-valuemin="0" aria-valuemax="100" aria-valuenow="{width}" '
        f'aria-valuetext="{_e(said)}" title="{_e(said)}"{ring}>'
        f'<i style="width:{width}%;background:{colour}"></i></span>{words}</span>'
    )


def _slo(k: KRReport) -> str:
    """An SLO KR's budget bar, objective and SLI, and burn status; nothing for other KRs."""
    part = k.slo
    if part is None:
        return ""
    if part.firing:
        burn = f"<strong>burning fast</strong>: {_e(firing_text(part, fast=True))}"
    else:
        rates = rates_text(part, " · ")
        burn = f"burn ok: {_e(rates)}" if rates else "burn ok"
    return (
        f'<div class="slo">{_budget(part, k.view.status)}'
        f'<div class="small">{_e(objective_text(part))}: SLI {_e(sli_text(part))}</div>'
        f'<div class="small burn">{burn}</div></div>'
    )


def _badge(status: str) -> str:
    return f'<span class="badge" style="background:{COLOUR[status]}">{LABEL[status]}</span>'


def _name(k: KRReport) -> str:
    kr = k.view.kr
    title = f"{_e(kr.title)} " if kr.title else ""
    return f'{title}<a class="id" href="#kr-{_e(kr.id)}">{_e(kr.id)}</a>'


def _header(report: Report) -> str:
    tree = report.tree
    p = tree.defs.period
    counts: dict[str, int] = {}
    for k in report.key_results():
        counts[k.view.status] = counts.get(k.view.status, 0) + 1
    chips = "".join(
        f'<span style="background:{COLOUR[s]}">{n} {LABEL[s]}</span>'
        for s in STATUSES
        if (n := counts.get(s))
    )
    state = "ended, values final" if tree.ended else f"expected progress {percent(tree.expected)}"
    filters = report.filters.describe()
    shown = f" · filtered by {_e(filters)}" if filters else ""
    return (
        f"<h1>OKR report {_e(p.name)}</h1>"
        f'<div class="meta">{p.start} to {p.end} · as of {when(tree.now)} · {state}{shown}</div>'
        f'<div class="chips">{chips}</div>'
        + (f'<p class="empty">{_e(empty)}</p>' if (empty := no_values(report)) else "")
    )


def _attention(report: Report) -> str:
    found = report.attention()
    out = ["<h2>Needs attention</h2>"]
    if not found:
        return out[0] + "<p>Nothing stale, failing or without data.</p>"
    out.append(
        "<table><tr><th>key result</th><th>objective</th><th>status</th><th>last value</th>"
        "<th>measured</th><th>last error</th></tr>"
    )
    for k in found:
        measured = k.view.obs.measured_at
        out.append(
            f"<tr><td>{_name(k)}</td><td class='id'>{_e(k.objective.objective.id)}</td>"
            f"<td>{_badge(k.view.status)}</td>"
            f"<td>{_e(number(k.view.obs.value, k.view.kr.unit))}</td>"
            f"<td>{when(measured) if measured else 'never'}</td>"
            f"<td>{_e(k.view.error or '–')}</td></tr>"
        )
    return out[0] + _folded(len(found), "".join(out[1:]) + "</table>")


def _folded(rows: int, table: str) -> str:
    """A long table folded (open when short), so the objectives stay in reach."""
    state = " open" if rows <= FOLD else ""
    noun = "key result" if rows == 1 else "key results"
    return f"<details{state}><summary>{rows} {noun}</summary>{table}</details>"


def _changes(report: Report) -> str:
    out = [f"<h2>What changed since {when(report.since)}</h2>"]
    found = report.changes()
    if not found:
        return out[0] + "<p>No value or status changed.</p>"
    out.append("<table><tr><th>key result</th><th>value</th><th>progress</th><th>status</th></tr>")
    for k in found:
        value, progress, status = change(k)
        out.append(
            f"<tr><td>{_name(k)}</td><td>{_e(value)}</td><td>{progress}</td><td>{status}</td></tr>"
        )
    return out[0] + _folded(len(found), "".join(out[1:]) + "</table>")


def _owners(report: Report) -> str:
    groups = by_owner(report)
    if len(groups) < 2:
        return ""
    out = [
        "<h2>By owner</h2><table><tr><th>owner</th><th>key results</th><th>mean progress</th>"
        "<th>needing attention</th></tr>"
    ]
    for owner, krs in groups.items():
        known = [k.view.progress for k in krs if k.view.progress is not None]
        mean = sum(known) / len(known) if known else None
        attention = sum(k.view.status in ("stale", "no_data", "off_track") for k in krs)
        tree = report.tree  # the team's bar is judged as an objective's is
        status = "no_data" if mean is None else classify(mean, tree.expected, tree.defs.thresholds)
        out.append(
            f"<tr><td>{_e(owner)}</td><td>{len(krs)}</td><td>{_bar(mean, status)}</td>"
            f"<td>{attention}</td></tr>"
        )
    return "".join(out) + "</table>"


def _objective(report: Report, view: ObjectiveView, depth: int) -> str:
    o = view.objective
    tree = report.tree
    starts, ends = tree.defs.period.starts_at.timestamp(), tree.defs.period.ends_at.timestamp()
    owner = f" · owner {_e(o.owner)}" if o.owner else ""
    nested = " nested" if depth else ""
    out = [
        f'<section class="objective{nested}" id="o-{_e(o.id)}" style="margin-left:{24 * depth}px">'
        f'<h3>{_e(o.title)} <span class="id">{_e(o.id)}</span></h3>'
        f"<div>{_bar(view.progress, view.status)} {_badge(view.status)}"
        f'<span class="small">{owner} · {view.items} items</span></div>'
    ]
    if view.key_results:
        out.append(
            "<table><tr><th>key result</th><th>progress</th><th>value</th><th>goal</th>"
            "<th>status</th><th>trend and forecast</th></tr>"
        )
        for kv in view.key_results:
            k = report.krs[kv.kr.id]
            grade = f" {_e(kv.grade)}" if tree.ended and kv.grade else ""
            measured = kv.obs.measured_at
            source = kv.kr.source or "manual"
            how = "checked in" if kv.obs.manual else "measured"
            seen = f" · {how} {when(measured)}" if measured else ""
            out.append(
                f'<tr id="kr-{_e(kv.kr.id)}"><td>{_name(k)}'
                f'<div class="small">{_e(source)}{seen}</div></td>'
                f"<td>{_bar(kv.progress, kv.status)}{_slo(k)}</td>"
                f'<td class="nw">{_e(number(kv.obs.value, kv.kr.unit))}</td>'
                f'<td class="nw">{_e(goal(k))}</td>'
                f"<td>{_badge(kv.status)}{grade}</td>"
                f"<td>{chart(k, starts, ends, tree.now.timestamp())}"
                f'<div class="small">{_e(outlook(k))}</div></td></tr>'
            )
        out.append("</table>")
    return "".join(out) + "</section>"


def render(report: Report) -> str:
    body = [_header(report), _attention(report), _changes(report), _owners(report)]
    body.append("<h2>Objectives</h2>")
    body += [_objective(report, view, depth) for view, depth in report.objectives()]
    if not report.roots:
        body.append("<p>(no objectives)</p>")
    body.append(
        f'<p class="small">Charts: progress over the period (0 = start, top line = target), '
        f"dotted = expected progress, solid = measured (downsampled), dashed = forecast. "
        f"Forecast: {_e(METHOD)}.</p>"
    )
    title = _e(f"OKR report {report.tree.defs.period.name}")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{title}</title><style>{CSS}</style></head><body><main>"
        + "\n".join(body)
        + "</main></body></html>\n"
    )
