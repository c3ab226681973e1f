"""`okrsync explain KR_ID [--at T] [--json]`: where a KR's value came from, as people read it."""

from __future__ import annotations

import json
from typing import Any

from okrsync.cli import moment
from okrsync.cli.exits import EXIT_OK
from okrsync.cli.settings import Settings
from okrsync.errors import UsageError
from okrsync.store.store import Store
from okrsync.timefmt import parse_instant


def explain(args: Any, settings: Settings) -> int:
    """Print the explanation of the KR's latest measurement (at or before --at). A KR with
    no measurement yet is said so, exit 0; an unknown KR is exit 2 with close matches."""
    from okrsync.config.loader import load
    from okrsync.progress.definitions import from_config
    from okrsync.progress.periods import choose, resolve
    from okrsync.review.explain import explain as gather
    from okrsync.review.explain import unknown_kr

    at = moment.utcnow()
    if args.at:
        try:
            at = parse_instant(args.at)
        except ValueError as exc:
            raise UsageError(f"--at: {exc}") from None
    config = load(settings.config)
    store = Store(settings.db, create=False)
    try:
        try:
            defs = choose(from_config(config), store, None, at if args.at else None)
        except UsageError as exc:  # choose speaks of --now, the flag of status
            raise UsageError(str(exc).replace("--now", "--at", 1)) from None
        defs = resolve(defs, store, at)
        if defs.kr(args.kr_id) is None:
            known = store.known_kr(args.kr_id)
            if known is not None and known["retired_at"]:
                raise UsageError(
                    f"{args.kr_id} was retired at {known['retired_at']} (removed from config): "
                    f"its history is kept, see okrsync history {args.kr_id}"
                )
            where = str(settings.config) if defs.period == config.period else defs.period.name
            raise unknown_kr(args.kr_id, defs, where)
        result = gather(store, defs, args.kr_id, at)
    finally:
        store.close()
    print(json.dumps(result, indent=2) if args.json else text(result))
    return EXIT_OK


def _unit(value: Any, unit: str | None) -> str:
    if value is None:
        return "-"
    shown = f"{value:.6g}" if isinstance(value, float | int) else str(value)
    return f"{shown} {unit}" if unit else shown


def _measurement(m: dict[str, Any], unit: str | None, pad: str = "  ") -> list[str]:
    lines = [f"{pad}measured at {m['measured_at']}: {_unit(m['value'], unit)} ({m['kind']})"]
    if m["kind"] == "manual":
        c = m["checkin"] or {}
        lines.append(f"{pad}check-in by {c.get('author') or 'unknown'}")
        if c.get("note"):
            lines.append(f"{pad}note: {c['note']}")
        if c.get("until"):
            lines.append(f"{pad}holds until {c['until']} (override of an automated KR)")
        return lines
    if m.get("backfilled"):
        run = f" (run {m['run']['id']})" if m["run"] else ""
        lines.append(
            f"{pad}backfilled: measured afterwards for this instant by `okrsync backfill`{run}"
        )
    lines.append(f"{pad}source: {m['source']}")
    formula, slo = m["formula"], m.get("slo")
    if slo:
        lines += _slo(slo, pad)
    elif formula:
        lines.append(f"{pad}formula: {formula['expression']}")
        for name, i in formula["inputs"].items():
            lines.append(
                f"{pad}  {name} = {_unit(i['value'], None)}  ({i['source']}: {i['query']})"
            )
        if formula["arithmetic"]:
            lines.append(f"{pad}  {formula['arithmetic']}")
    else:
        lines.append(f"{pad}query sent: {m['query']}")
    if m["answer"] is not None:
        lines.append(f"{pad}raw answer: {json.dumps(m['answer'], sort_keys=True)}")
    if m["note"]:
        lines.append(f"{pad}note: {m['note']}")
    if m["error"]:
        lines.append(f"{pad}error: {m['error']}")
    if m["fetched_at"] or m["duration_s"] is not None:
        took = "" if m["duration_s"] is None else f" in {m['duration_s']:.3f} s (retries included)"
        lines.append(f"{pad}fetched {m['fetched_at'] or ''}{took}".rstrip())
    run = m["run"]
    if run:
        commit = run["config_commit"] or "not recorded"
        lines.append(
            f"{pad}run {run['id']} ({run['kind']}), config hash {run['config_digest']}, "
            f"commit {commit}"
        )
    return lines


def _slo(slo: dict[str, Any], pad: str) -> list[str]:
    """Each SLO query with its window and count, then the arithmetic of the reading."""
    lines = [f"{pad}slo queries (a query matching no series counts 0):"]
    for q in slo["queries"]:
        lines.append(
            f"{pad}  {q['name']} = {_unit(q['count'], None)}  over {q['window'] or '?'}  "
            f"({q['source']}: {q['query']})"
        )
    a = slo["arithmetic"]
    if a:
        lines.append(f"{pad}  {a['sli']}")
        lines.append(f"{pad}  error budget = {a['error_budget']}")
        lines.append(f"{pad}  error budget remaining = {a['error_budget_remaining']}")
        for window, rate in a["burn_rates"].items():
            lines.append(f"{pad}  burn rate {window} = {rate}")
        lines += [f"{pad}  alert {alert}" for alert in a["alerts"]]
    return lines


def text(r: dict[str, Any]) -> str:
    """The explanation as lines a person reads top to bottom."""
    kr = r["kr"]
    unit = kr["unit"]
    title = f" ({kr['title']})" if kr["title"] else ""
    out = [f"{kr['id']}{title}, objective {kr['objective']}, period {r['period']['name']}"]
    out.append(
        f"as of {r['at']}"
        + (f" (judged at the period's end {r['as_of']})" if r["as_of"] != r["at"] else "")
    )
    if not r["found"]:
        what = "okrsync checkin" if kr["manual"] else "okrsync sync --once (or checkin)"
        out.append(
            f"no measurement of {kr['id']} at or before this time: nothing to explain "
            f"yet ({what} records one)"
        )
        return "\n".join(out)
    if r["override"]:
        o = r["override"]
        out.append(
            f"override holds until {o['until']} (by {o['author'] or 'unknown'}"
            + (f": {o['note']}" if o["note"] else "")
            + "): automation records but does not replace it"
        )
    if r["measurement"]:
        out.append("value shown:")
        out += _measurement(r["measurement"], unit)
    if r["automated"]:
        out.append("automated value under the override:")
        out += _measurement(r["automated"], unit)
    elif r["latest_attempt"]:
        out.append("latest attempt:")
        out += _measurement(r["latest_attempt"], unit)
    p = r["progress"]
    start = "previous (no baseline yet)" if p["start"] is None else _unit(p["start"], unit)
    out.append(f"start {start}, target {_unit(p['target'], unit)}")
    if p["arithmetic"]:
        out.append(f"progress = (value - start) / (target - start) = {p['arithmetic']}")
    s = r["status"]
    out.append(f"expected progress: {s['expected_arithmetic']}")
    out.append(f"status {s['rule']}")  # the rule starts with the status it gives
    return "\n".join(out)
