"""`okrsync plan` and `okrsync apply`: config as code, shown before it lands.

`plan` measures without storing and prints what applying the config would change (text
for a pull-request comment, or --json); `apply` is `sync --once` recording the config's
hash and git commit with its run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from okrsync.cli.exits import EXIT_FAILED, EXIT_INVALID, EXIT_OK
from okrsync.cli.settings import Settings

if TYPE_CHECKING:
    from datetime import datetime

    from okrsync.config.loader import Config
    from okrsync.review.plan import KRPlan, ObjectivePlan, Pair, Plan

EXIT_CHANGES = 2
"""`plan`: something would change (the same number as an invalid config: both stop a CI
job; the output tells them apart)."""
MARKS = {"add": "+", "change": "~", "retire": "-", "unchanged": " "}


def plan(args: Any, settings: Settings, config: Config, now: datetime) -> int:
    """Measure (or `--only` some), store nothing, compare with the store; print the plan."""
    from okrsync.measure.plan import select
    from okrsync.progress.definitions import from_config
    from okrsync.progress.periods import resolve
    from okrsync.progress.tree import evaluate
    from okrsync.review import plan as review
    from okrsync.review.gitinfo import config_commit
    from okrsync.service.once import idle_reason, run_once
    from okrsync.store.store import Store

    select(config, args.only)  # an unknown --only id is exit 2 before anything is measured
    store = Store(settings.db, create=False)
    where = store.path
    try:
        applied = store.applied()
        stored = store.definitions(config.period.name)
        old = None
        if stored is not None:
            stored = resolve(stored, store, now)
            ids = [k.id for k in stored.key_results()]
            old = evaluate(stored, store.observations(ids, now, stored.period), now)
        idle = idle_reason(config, now)
        measured = []
        if idle is None:
            measured = run_once(config, None, now, only=args.only, reader=store).measurements
        defs = resolve(from_config(config), store, now)
        known = store.observations([k.id for k in defs.key_results()], now, defs.period)
    finally:
        store.close()
    new = review.after(defs, known, measured, now)
    result = review.compare(config, applied, old, new, measured)
    commit = config_commit(settings.config)
    if args.json:
        print(json.dumps(as_json(result, applied, config.digest, commit, now, idle), indent=2))
    else:
        print(as_text(result, applied, config.digest, commit, idle, where))
    if result.errors:
        return EXIT_FAILED
    return EXIT_CHANGES if result.changes else EXIT_OK


def applied_line(run_id: str, digest: str, commit: str | None) -> str:
    """`applied config 1a2b3c4d5e6f (commit 1a2b3c4) as run 0123abcd...`."""
    from okrsync.review.gitinfo import short

    where = f"commit {short(commit)}" if commit else "not in a git repository"
    return f"applied config {digest} ({where}) as run {run_id}"


def baseline(applied: dict[str, Any]) -> dict[str, Any] | None:
    """The run the plan compares with (the latest that wrote the store), if any."""
    run = applied.get("run")
    if run is None:
        return None
    return {
        "run_id": run["id"],
        "kind": run["kind"],
        "at": run["started_at"],
        "config_digest": run["config_digest"],
        "config_commit": run.get("config_commit"),
    }


def as_json(
    result: Plan,
    applied: dict[str, Any],
    digest: str,
    commit: str | None,
    now: Any,
    idle: str | None,
) -> dict[str, Any]:
    from okrsync.timefmt import to_text

    return {
        "changes": result.changes,
        "errors": len(result.errors),
        "counts": {a: result.count(a) for a in ("change", "add", "retire", "unchanged")},
        "now": to_text(now),
        "idle": idle,
        "config": {"digest": digest, "commit": commit},
        "baseline": baseline(applied),
        "krs": [k.as_json() for k in result.krs],
        "objectives": [o.as_json() for o in result.objectives],
    }


def as_text(
    result: Plan,
    applied: dict[str, Any],
    digest: str,
    commit: str | None,
    idle: str | None,
    db: str,
) -> str:
    """The plan as a pull-request comment: a summary line, where it compares from, then a
    block per KR and objective that would change (`~` change, `+` add, `-` retire)."""
    from okrsync.review.gitinfo import short

    lines = [summary(result)]
    base = baseline(applied)
    mine = f"config {digest}" + (f", commit {short(commit)}" if commit else "")
    if base is None:
        known = ""
        if applied.get("key_results"):  # check-ins, or an apply while the period was not running
            known = " (key results known from check-ins or an apply that measured nothing)"
        lines.append(f"no applied run in {Path(db).name}{known}: comparing {mine} with it")
    else:
        theirs = f"config {base['config_digest']}"
        if base["config_commit"]:
            theirs += f", commit {short(base['config_commit'])}"
        lines.append(
            f"compared with run {base['run_id']} ({base['kind']}) at {base['at']}, "
            f"{theirs}; planning {mine}"
        )
    if idle:
        lines.append(idle)
    for kr in result.krs:
        if kr.action != "unchanged" or kr.error:
            lines += ["", *kr_block(kr)]
    for o in result.objectives:
        if o.action != "unchanged":
            lines += ["", *objective_block(o)]
    same = [k.id for k in result.krs if k.action == "unchanged" and not k.error]
    if same:
        lines += ["", f"unchanged: {', '.join(same)}"]
    return "\n".join(lines)


def summary(result: Plan) -> str:
    """`3 to change, 1 to add, 0 to retire` (+ objectives, + failures)."""
    krs = result.krs

    def n(action: str, items: list[Any]) -> int:
        return sum(1 for i in items if i.action == action)

    line = f"{n('change', krs)} to change, {n('add', krs)} to add, {n('retire', krs)} to retire"
    objectives = result.objectives
    moving = [o for o in objectives if o.action != "unchanged"]
    if moving:
        line += (
            f"; objectives: {n('change', moving)} to change, {n('add', moving)} to add, "
            f"{n('retire', moving)} to retire"
        )
    if result.errors:
        line += f"; {len(result.errors)} failed to measure"
    return line


def kr_block(kr: KRPlan) -> list[str]:
    mark = "!" if kr.error and kr.action == "unchanged" else MARKS[kr.action]
    how = "" if kr.measured or kr.action == "retire" else " (not measured: value from the store)"
    lines = [f"{mark} {kr.id}{how}"]
    lines.append(f"    value:    {_pair(kr.value, lambda v: _number(v, kr.unit))}")
    lines.append(f"    progress: {_pair(kr.progress, _percent)}")
    lines.append(f"    status:   {_pair(kr.status, str)}")
    for name, pair in kr.config.items():
        lines.append(f"    {name + ':':<9} {_pair(pair, _shown, always=True)}")
    if kr.error:
        lines.append(f"    error:    {kr.error}")
    return lines


def objective_block(o: ObjectivePlan) -> list[str]:
    lines = [f"{MARKS[o.action]} objective {o.id}"]
    for name, pair in o.config.items():
        lines.append(f"    {name + ':':<9} {_pair(pair, _shown, always=True)}")
    return lines


def _pair(pair: Pair, fmt: Any, *, always: bool = False) -> str:
    old = "(none)" if pair.old is None else fmt(pair.old)
    new = "(none)" if pair.new is None else fmt(pair.new)
    if not always and not pair.differs:
        return old
    return f"{old} -> {new}"


def _number(value: float, unit: str | None) -> str:
    from okrsync.numfmt import number

    return number(value, unit)


def _percent(progress: float) -> str:
    from okrsync.cli.render import percent

    return f"{percent(progress)}%"


def _shown(value: Any) -> str:
    """A definition value: strings quoted (so whitespace changes show), the rest as JSON."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return text if len(text) <= 300 else text[:297] + "..."


__all__ = ["EXIT_CHANGES", "EXIT_INVALID", "plan"]
