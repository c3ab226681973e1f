"""`okrsync grade`: a period's scorecard as text, JSON and Markdown, committed misses first."""

from __future__ import annotations

from typing import Any

from okrsync.cli.render import period_json, score
from okrsync.numfmt import number
from okrsync.progress.tree import KRView, ObjectiveView, Tree


def _misses(tree: Tree) -> list[tuple[ObjectiveView, KRView]]:
    """Committed KRs that did not meet their bar (or have no score): each wants a postmortem."""
    return [
        (o, k)
        for o in tree.walk()
        for k in o.key_results
        if k.kr.kind == "committed" and k.grade != "met"
    ]


def _state(tree: Tree) -> str:
    if tree.ended:
        return "ended: final scores"
    return f"running: scores as of {tree.now:%Y-%m-%d %H:%M} UTC"


def scorecard_json(tree: Tree) -> dict[str, Any]:
    return {
        "period": period_json(tree.defs.period, tree.ended),
        "ended": tree.ended,
        "as_of": tree.now.isoformat().replace("+00:00", "Z"),
        "average_score": tree.average_score,
        "committed_misses": [
            {
                "id": k.kr.id,
                "title": k.kr.title,
                "objective": o.objective.id,
                "value": k.obs.value,
                "target": k.kr.target,
                "score": k.score,
            }
            for o, k in _misses(tree)
        ],
        "objectives": [
            {
                "id": o.objective.id,
                "title": o.objective.title,
                "parent": o.objective.parent,
                "kind": o.objective.kind,
                "score": o.score,
                "grade": o.grade,
                "key_results": [
                    {
                        "id": k.kr.id,
                        "title": k.kr.title,
                        "kind": k.kr.kind,
                        "value": k.obs.value,
                        "start": k.kr.start,
                        "target": k.kr.target,
                        "unit": k.kr.unit,
                        "score": k.score,
                        "grade": k.grade,
                    }
                    for k in o.key_results
                ],
            }
            for o in tree.walk()
        ],
    }


def _goal(k: KRView) -> str:
    start = "previous" if k.kr.start is None else number(k.kr.start, None)
    return f"{number(k.obs.value, k.kr.unit)} ({start} → {number(k.kr.target, k.kr.unit)})"


def scorecard_text(tree: Tree) -> str:
    period = tree.defs.period
    lines = [
        f"{period.name}  {period.start} → {period.end}   {_state(tree)}   "
        f"average score {score(tree.average_score).strip()}",
        "",
    ]
    misses = _misses(tree)
    if misses:
        lines.append(f"committed misses ({len(misses)}; each wants a postmortem):")
        for o, k in misses:
            lines.append(
                f"  ✖ {k.kr.id}  score {score(k.score).strip()}  {_goal(k)}  [{o.objective.id}]"
            )
        lines.append("")
    for o in tree.walk():
        lines.append(
            f"{score(o.score):>5} {o.grade or 'no_data':<7} {o.objective.title}  "
            f"[{o.objective.id}] {o.objective.kind}"
        )
        for k in o.key_results:
            lines.append(
                f"  {score(k.score):>5} {k.grade or 'no_data':<7} {k.kr.title or k.kr.id}  "
                f"[{k.kr.id}] {k.kr.kind}  {_goal(k)}"
            )
    if not tree.roots:
        lines.append("(no objectives)")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def scorecard_markdown(tree: Tree) -> str:
    period = tree.defs.period
    out = [
        f"# Scorecard {_cell(period.name)} ({period.start} to {period.end})",
        "",
        f"{_state(tree).capitalize()}. Average score: **{score(tree.average_score).strip()}**.",
        "",
    ]
    misses = _misses(tree)
    if misses:
        out += ["## Committed misses", ""]
        for o, k in misses:
            out.append(
                f"- **{_cell(k.kr.id)}** ({_cell(o.objective.id)}): score "
                f"{score(k.score).strip()}, {_cell(_goal(k))}"
            )
        out.append("")
    out += [
        "## Objectives and key results",
        "",
        "| | id | title | kind | value | score | grade |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in tree.walk():
        out.append(
            f"| **O** | {_cell(o.objective.id)} | {_cell(o.objective.title)} | "
            f"{o.objective.kind} | | {score(o.score).strip()} | {o.grade or 'no data'} |"
        )
        for k in o.key_results:
            out.append(
                f"| KR | {_cell(k.kr.id)} | {_cell(k.kr.title or '')} | {k.kr.kind} | "
                f"{_cell(_goal(k))} | {score(k.score).strip()} | {k.grade or 'no data'} |"
            )
    return "\n".join(out) + "\n"
