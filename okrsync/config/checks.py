"""Checks that need more than one model: sources against their connector's source model,
KR queries against their connector's query model, parents, and placeholders.

Every check adds `Problem`s (file:line: path: message) instead of stopping at the first.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import ValidationError

from okrsync.config import plugins, slo, templating
from okrsync.config.messages import dotted, located, message, unknown_key
from okrsync.config.model import (
    FORMULA_NO_QUERY,
    MANUAL,
    SLO_NO_QUERY,
    KeyResult,
    Measure,
    Objective,
)
from okrsync.config.sinks import Sink, push_targets, target_problem
from okrsync.config.yaml_reader import Loc, YamlDoc
from okrsync.connector import SourceBase
from okrsync.errors import Problem
from okrsync.secrets import SECRET_HEADER, env_name

KR_KEYS = frozenset(KeyResult.model_fields)
INPUT_KEYS = frozenset(Measure.model_fields)


@dataclass(frozen=True)
class Origin:
    """Where a piece of config was written: file, line and dotted path."""

    file: str
    line: int | None
    path: str
    doc: YamlDoc | None = field(default=None, compare=False, repr=False)
    loc: Loc = field(default=(), compare=False, repr=False)

    def at(self, *keys: str | int) -> Origin:
        """The origin of a key inside this piece (its own line when the YAML has it)."""
        loc = (*self.loc, *keys)
        line = self.doc.line_of(loc) if self.doc else self.line
        return Origin(self.file, line, dotted(loc), self.doc, loc)


Add = Callable[[Origin, str], None]


def all_query_keys() -> frozenset[str]:
    """Query keys any installed connector takes."""
    return plugins.all_query_keys()


def check_source(doc: YamlDoc, name: str, raw: Any) -> tuple[SourceBase | None, list[Problem]]:
    """`sources.<name>` validated by its connector's source model, or the problems why not."""
    loc: Loc = ("sources", name)
    if not isinstance(raw, dict):
        return None, []  # the file's own model already says it must be a mapping
    where = Problem(doc.file, doc.line_of(loc), dotted(loc), "")
    type_name = raw.get("type")
    known = ", ".join(plugins.type_names())
    if type_name is None:
        return None, [_with(where, f"field required: type ({known})")]
    if not isinstance(type_name, str) or type_name not in plugins.installed():
        hint = difflib.get_close_matches(str(type_name), plugins.type_names(), n=1)
        mean = f"; did you mean '{hint[0]}'?" if hint else ""
        return None, [_with(where, f"unknown source type '{type_name}' (known: {known}{mean})")]
    try:
        found = plugins.plugin(type_name)
    except plugins.PluginError as exc:
        return None, [_with(where, str(exc))]
    secrets, clean = scrub(doc, name, raw)
    try:  # `clean` has no credentials, so no message can show them
        model = found.source_model.model_validate(clean, context={"source": name})
    except ValidationError as exc:
        found_here = located(doc, exc, loc, keys=found.source_model.model_fields)
        return None, sorted([*secrets, *found_here], key=lambda p: p.line or 0)
    return (None, secrets) if secrets else (model, [])


def scrub(doc: YamlDoc, name: str, raw: dict[str, Any]) -> tuple[list[Problem], dict[str, Any]]:
    """Credentials written into a source, whatever its type (user:password@ in any URL,
    secret-looking headers), and the source without them. Messages name the env
    variables to use instead, never the value."""
    problems: list[Problem] = []
    stem = env_name(name, "")

    def add(loc: Loc, text: str) -> None:
        problems.append(Problem(doc.file, doc.line_of(loc), dotted(loc), text))

    def clean(value: Any, loc: Loc) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                where = (*loc, str(key))
                if loc[2:] == ("headers",) and SECRET_HEADER.search(str(key)):
                    suffix = re.sub(r"[^A-Za-z0-9]", "_", str(key)).upper()
                    add(
                        where,
                        f"header '{key}' holds a secret, and secrets never go in the config: "
                        f"set {stem}HEADER_{suffix} (or {stem}HEADER_{suffix}_FILE) in the "
                        "environment and remove it here",
                    )
                else:
                    out[key] = clean(item, where)
            return out
        if isinstance(value, list):
            return [clean(item, (*loc, i)) for i, item in enumerate(value)]
        if isinstance(value, str) and (bare := _without_userinfo(value)) is not None:
            add(
                loc,
                f"credentials in a URL: write {loc[-1]}: {bare} and set {stem}USER and "
                f"{stem}PASSWORD (or {stem}TOKEN), or their _FILE forms, in the environment",
            )
            return bare
        return value

    return problems, clean(raw, ("sources", name))


def _without_userinfo(text: str) -> str | None:
    """`text` without its `user:password@` when it is a URL that has one, else None."""
    if "@" not in text or "://" not in text:
        return None
    try:
        parts = urlsplit(text.strip())
        if not parts.scheme or "@" not in parts.netloc:
            return None
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return None
    return urlunsplit(parts._replace(netloc=host))


def _with(where: Problem, text: str) -> Problem:
    return Problem(where.file, where.line, where.path, text)


def unknown_keys(doc: YamlDoc) -> list[Problem]:
    """Keys of KRs and formula inputs that neither okrsync nor any connector reads."""
    data = doc.data if isinstance(doc.data, dict) else {}
    query_keys = all_query_keys()
    problems: list[Problem] = []

    def scan(raw: Any, loc: Loc, allowed: frozenset[str]) -> None:
        for key in raw if isinstance(raw, dict) else ():
            if key not in allowed and key not in query_keys:
                where = (*loc, key)
                problems.append(
                    Problem(doc.file, doc.line_of(where), dotted(where), unknown_key(key))
                )

    objectives = data.get("objectives")
    for i, objective in enumerate(objectives if isinstance(objectives, list) else []):
        krs = objective.get("key_results") if isinstance(objective, dict) else None
        for j, kr in enumerate(krs if isinstance(krs, list) else []):
            loc: Loc = ("objectives", i, "key_results", j)
            scan(kr, loc, KR_KEYS)
            inputs = kr.get("inputs") if isinstance(kr, dict) else None
            for name, measure in inputs.items() if isinstance(inputs, dict) else ():
                scan(measure, (*loc, "inputs", name), INPUT_KEYS)
    return problems


MAX_PARENTS = 32  # levels of parents above an objective; real cascades use 3 or 4


def parent_depths(parents: dict[str, str | None]) -> dict[str, int | None]:
    """Levels of parents above each objective (None: its parents run into a cycle).

    One pass over all objectives (each chain is followed once), so a long chain costs no
    more than a short one.
    """
    depths: dict[str, int | None] = {}
    for start in parents:
        path: list[str] = []
        on_path: set[str] = set()
        current: str | None = start
        while current in parents and current not in depths and current not in on_path:
            path.append(current)
            on_path.add(current)
            current = parents[current]
        if current in on_path:
            below: int | None = None  # a cycle
        elif current in depths:
            below = depths[current]
        else:
            below = -1 if current is None else 0  # the root, or a parent that is not valid
        for name in reversed(path):
            below = None if below is None else below + 1
            depths[name] = below
    return depths


def check_parent(
    objective: Objective,
    ids: set[str],
    parents: dict[str, str | None],
    depths: dict[str, int | None],
    origin: Origin,
    add: Add,
) -> None:
    """The parent exists, following parents never comes back, and stays MAX_PARENTS deep.

    `parents` maps every objective id to its parent and `depths` is their parent_depths.
    """
    if objective.parent is None:
        return
    if objective.parent not in ids:
        hint = difflib.get_close_matches(objective.parent, sorted(ids), n=1)
        add(
            origin,
            f"parent: objective '{objective.parent}' does not exist"
            + (f" (did you mean '{hint[0]}'?)" if hint else ""),
        )
        return
    chain: list[str] = [objective.id]
    current: str | None = objective.parent
    while current is not None and len(chain) <= MAX_PARENTS + 1:
        if current in chain:
            add(origin, "parent: cycle of parents: " + " -> ".join([*chain, current]))
            return
        chain.append(current)
        current = parents.get(current)
    depth = depths.get(objective.id)
    if depth is None and current is not None:
        add(origin, "parent: cycle of parents: " + " -> ".join([*chain[:4], "..."]))
    elif depth == MAX_PARENTS + 1:  # deeper ones sit under this one: one report per branch
        shown = " -> ".join([*chain[:3], "...", chain[-1]])
        add(
            origin,
            f"parent: {depth} levels of parents ({shown}), more than the {MAX_PARENTS} "
            f"allowed: give '{objective.id}' a parent nearer the top",
        )


def check_measures(
    kr: KeyResult,
    types: dict[str, str],
    invalid_sources: set[str],
    origins: dict[str, Origin],
    add: Add,
    values: Mapping[str, str],
) -> None:
    """The KR's own measure (or, for a formula, each input) fits its source's connector.

    `types` maps every defined source to its connector type, invalid sources of a known
    type included (so their KRs are still checked). Query fields are checked with their
    placeholders filled in (`values`), as they are sent.
    """
    query_keys = all_query_keys()
    if kr.slo is not None:
        _check_slo(kr, kr.slo, types, invalid_sources, origins[kr.id], add, values)
        return
    measures: list[tuple[Measure, Origin, bool]] = []
    if kr.formula is None:
        measures.append((kr, origins[kr.id], True))
    elif set(kr.query_fields()) & query_keys:
        add(origins[kr.id], FORMULA_NO_QUERY)
    measures += [(m, origins[f"{kr.id}/{n}"], False) for n, m in kr.inputs.items()]
    for measure, origin, allow_manual in measures:
        if measure.source in invalid_sources and measure.source not in types:
            continue  # already reported where it is defined, and its type is unknown
        fields = {k: v for k, v in measure.query_fields().items() if k in query_keys}
        _check_measure(measure.source, fields, types, origin, add, allow_manual, values)


def _check_slo(
    kr: KeyResult,
    spec: slo.Slo,
    types: dict[str, str],
    invalid_sources: set[str],
    origin: Origin,
    add: Add,
    values: Mapping[str, str],
) -> None:
    """An SLO KR writes no query of its own; its good (or errors) and total queries fit
    its source's connector, a bare string filling the connector's main query key."""
    if set(kr.query_fields()) & all_query_keys():
        add(origin, SLO_NO_QUERY)
    kind = types.get(str(kr.source))
    if kind is None:
        if kr.source not in invalid_sources:
            _check_measure(kr.source, {}, types, origin, add, False, values)
        return
    main = plugins.plugin(kind).main_query_key
    for name, query in slo.queries(spec):
        where = origin.at("slo", name)
        try:
            fields = slo.fields_of(query, main)
        except ValueError:
            takes = ", ".join(sorted(plugins.plugin(kind).query_keys))
            add(where, f"{kind} sources take no bare query string: write a mapping of ({takes})")
            continue
        _check_measure(kr.source, fields, types, where, add, False, values)


def _check_measure(
    source: str | None,
    fields: dict[str, Any],
    types: dict[str, str],
    origin: Origin,
    add: Add,
    allow_manual: bool,
    values: Mapping[str, str],
) -> None:
    if source is None:
        add(origin, "source: field required")
        return
    if source == MANUAL:
        if not allow_manual:
            add(origin, "source: a formula input needs an automated source, not 'manual'")
        elif fields:
            add(origin, f"a manual key result takes no query fields ({', '.join(fields)})")
        return
    kind = types.get(source)
    if kind is None:
        known = ", ".join(sorted(types)) or "none defined"
        add(origin, f"source: '{source}' is not defined under `sources:` (known: {known})")
        return
    found = plugins.plugin(kind)
    takes = sorted(found.query_keys)
    extra = sorted(set(fields) - set(takes))
    if extra:
        add(
            origin,
            f"{', '.join(extra)}: not a field of {kind} sources (they take {', '.join(takes)})",
        )
    try:
        found.query_model.model_validate(
            templating.render({k: v for k, v in fields.items() if k in takes}, values)
        )
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            if error["type"] == "missing" and len(loc) == 1:
                add(origin, f"{kind} sources need `{loc[0]}`")
            elif not loc:
                add(origin, message(error, origin.loc))
            else:
                add(origin.at(*loc), message(error, (*origin.loc, *loc)))
    for value in fields.values():
        for bad in templating.unknown_placeholders(str(value)):
            known = ", ".join(f"{{{k}}}" for k in templating.KNOWN)
            add(origin, f"unknown placeholder {{{bad}}} (known: {known})")


def check_push(
    kr: KeyResult, sinks: set[str], valid: dict[str, Sink], origin: Origin, add: Add
) -> None:
    """Each sink a KR pushes to is defined under `sinks:`, and named once; a sink that
    needs the KR's id or issue in its store (okr-tracker, mirrors) has it."""
    seen: set[str] = set()
    for i, target in enumerate(push_targets(kr.push)):
        where = origin.at("push", i)
        sink = valid.get(target.sink)
        problem = target_problem(sink.type, target) if sink is not None else None
        if problem:
            add(where, problem)
        if target.sink in seen:
            add(where, f"sink '{target.sink}' is listed twice: push to each sink once")
        seen.add(target.sink)
        if target.sink not in sinks:
            hint = difflib.get_close_matches(target.sink, sorted(sinks), n=1)
            known = ", ".join(sorted(sinks)) or "none defined"
            mean = f"; did you mean '{hint[0]}'?" if hint else ""
            add(where, f"sink '{target.sink}' is not defined under `sinks:` (known: {known}{mean})")
