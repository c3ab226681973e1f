"""Pydantic's validation errors rewritten for the person editing the YAML, at file:line."""

from __future__ import annotations

import difflib
import functools
import re
from typing import Any

from pydantic import ValidationError

from okrsync.config import plugins
from okrsync.config.duration import PATTERN as DURATION_PATTERN
from okrsync.config.model import ConfigFile, Defaults, KeyResult, Objective, Period
from okrsync.config.yaml_reader import Loc, YamlDoc
from okrsync.errors import Problem
from okrsync.secrets import env_name

SECRET_KEYS = {"token", "password", "user", "username", "api_key", "apikey", "secret", "auth"}


@functools.cache
def known_keys() -> list[str]:
    """Every key okrsync or an installed connector reads: candidates for 'did you mean'."""
    names = {
        n for m in (ConfigFile, Period, Defaults, Objective, KeyResult) for n in m.model_fields
    }
    for type_name in plugins.type_names():
        try:
            found = plugins.plugin(type_name)
        except plugins.PluginError:
            continue
        names |= set(found.source_model.model_fields) | set(found.query_model.model_fields)
    return sorted(names)


def unknown_key(key: str) -> str:
    """`unknown key 'taget' (did you mean 'target'?)`."""
    hint = difflib.get_close_matches(key, known_keys(), n=1)
    return f"unknown key '{key}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")


def dotted(loc: Loc) -> str:
    """`objectives[0].key_results[1].target` for a location in the YAML."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def located(doc: YamlDoc, exc: ValidationError, prefix: Loc = ()) -> list[Problem]:
    """Every error of `exc` (raised validating the data at `prefix`) at its file:line."""
    problems = []
    for error in exc.errors():
        loc = data_loc(doc.data, (*prefix, *error["loc"]))
        problems.append(Problem(doc.file, doc.line_of(loc), dotted(loc), message(error, loc)))
    problems.sort(key=lambda p: p.line or 0)
    return problems


def data_loc(data: Any, loc: tuple[Any, ...]) -> Loc:
    """Pydantic's loc with union tags dropped, so it names keys that exist in the YAML."""
    out: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            node = node[part]
        elif i == len(loc) - 1:
            pass
        else:
            continue
        out.append(part)
    return tuple(out)


def message(error: Any, loc: Loc) -> str:
    """One pydantic error as a sentence saying what to write instead."""
    kind = error["type"]
    if kind == "missing":
        return "field required"
    if kind == "extra_forbidden" and loc[0] == "sources" and str(loc[-1]) in SECRET_KEYS:
        stem = env_name(str(loc[1]), "")
        return (
            f"unknown key '{loc[-1]}': secrets never go in the config; set {stem}TOKEN "
            f"(or {stem}USER / {stem}PASSWORD), or their _FILE forms, in the environment"
        )
    if kind == "extra_forbidden":
        return unknown_key(str(loc[-1]))
    if kind == "string_pattern_mismatch":
        pattern = str(error.get("ctx", {}).get("pattern", ""))
        if pattern == DURATION_PATTERN:
            return f"'{error['input']}' is not a duration: write e.g. 30s, 5m, 1h, 1d"
        if loc and loc[-1] == "id":
            return f"'{error['input']}' is not a valid id (letters, digits, '-', '_', '.', ':')"
        return f"'{error['input']}' does not match {pattern}"
    if kind == "literal_error":
        allowed = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
        return f"{error['input']!r} is not one of {', '.join(allowed)}"
    text = str(error["msg"]).removeprefix("Value error, ")
    return text[:1].lower() + text[1:]
