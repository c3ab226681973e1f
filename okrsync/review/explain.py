"""Where a KR's value came from: one measurement and every step from source to status.

`explain` gathers it as plain data (the JSON of `okrsync explain --json`; the field names
are stable and listed in the README); the CLI renders it. No printing, no clock: the
moment is passed in. A history of any length costs a few indexed LIMIT 1 queries.
"""

from __future__ import annotations

import difflib
import re
from datetime import datetime
from typing import Any

from okrsync.errors import UsageError
from okrsync.progress.definitions import Definitions, KRDef
from okrsync.progress.maths import Observation, clamp, expected_progress
from okrsync.progress.status import judge, judged_slo
from okrsync.review.explain_slo import slo_part, slo_rule
from okrsync.review.stored_query import named_queries
from okrsync.store.store import Store
from okrsync.timefmt import to_text

_INPUT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*) = ")


def unknown_kr(kr_id: str, defs: Definitions, where: str) -> UsageError:
    """Exit 2 for a KR the period does not have, naming the closest ids."""
    ids = sorted(k.id for k in defs.key_results())
    close = difflib.get_close_matches(kr_id, ids, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "known: " + ", ".join(ids[:20])
    more = f" and {len(ids) - 20} more" if not close and len(ids) > 20 else ""
    return UsageError(f"no key result '{kr_id}' in {where} ({hint}{more})")


def num(value: float) -> str:
    """A number as written in the arithmetic: 73, 0.46, 99.95."""
    return f"{value:.6g}"


def explain(store: Store, defs: Definitions, kr_id: str, at: datetime) -> dict[str, Any]:
    """Everything behind the value `status` shows for `kr_id` as of `at` (see the README,
    "Explain: where a value came from", for the fields)."""
    kr = defs.kr(kr_id)
    if kr is None:
        raise unknown_kr(kr_id, defs, f"period {defs.period.name}")
    period = defs.period
    obs = store.observations([kr_id], at, period).get(kr_id, Observation())
    ended = at >= period.ends_at
    as_of = min(at, period.ends_at)
    max_age = None if ended else kr.max_age
    raw, status = judge(defs, kr, obs, as_of, max_age)
    problem = defs.start_problem(kr)
    if problem is not None:
        status = "no_data"
    shown = None
    if obs.until is not None:
        shown = store.override(kr_id, at, period)
    elif obs.value is not None:
        shown = store.measurement(kr_id, at, valued=True, period=period)
    latest = store.measurement(kr_id, at, period=period)
    under = None
    if obs.until is not None:
        under = store.measurement(kr_id, at, automated=True, period=period)
    out: dict[str, Any] = {
        "kr": {
            "id": kr.id,
            "title": kr.title,
            "objective": kr.objective_id,
            "unit": kr.unit,
            "source": kr.source,
            "manual": kr.is_manual,
        },
        "at": to_text(at),
        "as_of": to_text(as_of),
        "period": {"name": period.name, "start": str(period.start), "end": str(period.end)},
        "found": latest is not None,
        "measurement": _row(shown) if shown else None,
        "latest_attempt": _row(latest)
        if latest and (not shown or latest["id"] != shown["id"])
        else None,
        "override": None
        if obs.until is None
        else {"author": obs.author, "note": obs.note, "until": to_text(obs.until)},
        "automated": _row(under) if under else None,
        "progress": _progress(kr, obs.value, raw),
        "status": _status(defs, kr, obs, raw, status, as_of, max_age, ended, problem),
    }
    return out


def _row(row: dict[str, Any]) -> dict[str, Any]:
    """One stored measurement as explain shows it."""
    manual = bool(row["manual"])
    return {
        "id": row["id"],
        "measured_at": row["measured_at"],
        "value": row["value"],
        "error": row["error"],
        "kind": "manual" if manual else "automated",
        "backfilled": bool(row["backfilled"]),
        "source": row["source"],
        "query": row["query"],
        "answer": row.get("answer"),
        "note": row["note"],
        "formula": _formula(row),
        "slo": slo_part(row),
        "fetched_at": row.get("fetched_at"),
        "duration_s": row.get("duration_s"),
        "stored_progress": row["progress"],
        "stored_status": row["status"],
        "checkin": {"author": row.get("author"), "note": row["note"], "until": row.get("until")}
        if manual
        else None,
        "run": None
        if row.get("run_id") is None
        else {
            "id": row["run_id"],
            "kind": row.get("run_kind"),
            "config_digest": row.get("config_digest"),
            "config_commit": row.get("config_commit"),
        },
    }


def _formula(row: dict[str, Any]) -> dict[str, Any] | None:
    """A formula KR's expression, each input's value and query, and the sum written out:
    `closed / total * 100 = 12 / 20 * 100 = 60`. The stored query reads
    `EXPR with a = SOURCE: QUERY; b = SOURCE: QUERY`."""
    if row["source"] != "formula" or not row["query"]:
        return None
    expression, _, rest = row["query"].partition(" with ")
    values: dict[str, float] = row["inputs"] or {}
    queries = named_queries(rest, _INPUT)
    inputs = {
        key: {"value": values.get(key), "source": source, "query": text}
        for key, (source, text) in queries.items()
    }
    arithmetic = None
    if values and all(k in values for k in queries):
        filled = re.sub(
            r"\b([A-Za-z_][A-Za-z0-9_]*)\b",
            lambda m: num(values[m.group(1)]) if m.group(1) in values else m.group(1),
            expression,
        )
        result = "error" if row["value"] is None else num(row["value"])
        arithmetic = f"{expression} = {filled} = {result}"
    return {"expression": expression, "inputs": inputs, "arithmetic": arithmetic}


def _progress(kr: KRDef, value: float | None, raw: float | None) -> dict[str, Any]:
    """(value - start) / (target - start), written out, raw and as shown (clamped)."""
    out: dict[str, Any] = {
        "start": kr.start,
        "target": kr.target,
        "value": value,
        "raw": raw,
        "clamped": None if raw is None else clamp(raw),
        "arithmetic": None,
    }
    if value is not None and raw is not None and kr.start is not None:
        s, t = kr.start, kr.target
        text = f"({num(value)} - {num(s)}) / ({num(t)} - {num(s)}) = {raw:.4g}"
        if clamp(raw) != raw:
            text += f", shown clamped to [0, 1]: {num(clamp(raw))}"
        out["arithmetic"] = text
    return out


def _status(
    defs: Definitions,
    kr: KRDef,
    obs: Observation,
    raw: float | None,
    status: str,
    as_of: datetime,
    max_age: float | None,
    ended: bool,
    problem: str | None,
) -> dict[str, Any]:
    """The status and the rule that gave it, with the expected progress at `as_of`."""
    period, th = defs.period, defs.thresholds
    expected = expected_progress(period.starts_at, period.ends_at, as_of)
    elapsed = (as_of - period.starts_at).total_seconds() / 86400
    length = (period.ends_at - period.starts_at).total_seconds() / 86400
    out: dict[str, Any] = {
        "status": status,
        "rule": _rule(obs, raw, status, expected, th.on_track, th.at_risk, max_age, problem),
        "expected_progress": expected,
        "expected_arithmetic": f"{max(elapsed, 0):.4g} of {length:.4g} days elapsed "
        f"= {expected:.4g}",
        "thresholds": {"on_track": th.on_track, "at_risk": th.at_risk},
        "stale_after_s": max_age,
        "period_ended": ended,
    }
    rule = (
        slo_rule(kr.slo, judged_slo(kr.slo, obs), status, expected)
        if kr.slo and problem is None
        else None
    )
    if rule is not None:
        out["rule"] = rule
    if ended:
        out["rule"] += " (the period has ended: judged as of its end, never stale by age)"
    return out


def _rule(
    obs: Observation,
    raw: float | None,
    status: str,
    expected: float,
    on_track: float,
    at_risk: float,
    max_age: float | None,
    problem: str | None,
) -> str:
    if problem is not None:
        return f"no_data: {problem}"
    if status == "no_data" or raw is None or obs.measured_at is None:
        why = f" (last error: {obs.error})" if obs.error else ""
        return f"no_data: no value in the period at or before this time{why}"
    if status == "stale":
        if obs.error is not None and obs.attempted_at and obs.attempted_at >= obs.measured_at:
            return (
                f"stale: the last attempt at {to_text(obs.attempted_at)} failed ({obs.error}); "
                "the value shown is the one before it"
            )
        return f"stale: the value is older than stale_after x every = {max_age:g} s"
    p = clamp(raw)
    held = " (an override holds: failed attempts and age do not make it stale)"
    suffix = held if obs.until is not None else ""
    if status == "done":
        return f"done: progress {p:.4g} >= 1" + suffix
    on, risk = expected - on_track, expected - at_risk
    if status == "on_track":
        return (
            f"on_track: progress {p:.4g} >= expected {expected:.4g} - on_track {on_track:g} "
            f"= {on:.4g}" + suffix
        )
    if status == "at_risk":
        return (
            f"at_risk: progress {p:.4g} < {on:.4g} (expected - on_track) but >= "
            f"expected {expected:.4g} - at_risk {at_risk:g} = {risk:.4g}" + suffix
        )
    return (
        f"off_track: progress {p:.4g} < expected {expected:.4g} - at_risk {at_risk:g} "
        f"= {risk:.4g}" + suffix
    )
