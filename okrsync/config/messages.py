"""Pydantic's validation errors rewritten for the person editing the YAML, at file:line."""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from okrsync.config import plugins
from okrsync.config.duration import PATTERN as DURATION_PATTERN
from okrsync.config.model import ConfigFile, Defaults, KeyResult, Objective, Period
from okrsync.config.sinks import (
    ISSUE,
    PUSH_ENTRY,
    PUSH_TAGS,
    SINK_MODELS,
    SINK_NAME_PATTERN,
    SINK_TYPES,
    PushTarget,
)
from okrsync.config.yaml_reader import Loc, YamlDoc
from okrsync.errors import Problem
from okrsync.secrets import env_name

EMPTY = {
    "key_results": "list at least one key result",
    "objectives": "list at least one objective",
    "sources": "write at least one source",
}
SECRET_KEYS = {"token", "password", "user", "username", "api_key", "apikey", "secret", "auth"}


@functools.cache
def known_keys() -> list[str]:
    """Every key okrsync or an installed connector reads: candidates for 'did you mean'."""
    names = {
        n
        for m in (ConfigFile, Period, Defaults, Objective, KeyResult, PushTarget, *SINK_MODELS)
        for n in m.model_fields
    }
    for type_name in plugins.type_names():
        try:
            found = plugins.plugin(type_name)
        except plugins.PluginError:
            continue
        names |= set(found.source_model.model_fields) | found.query_keys
    return sorted(names)


def unknown_key(key: str, keys: Iterable[str] | None = None) -> str:
    """`unknown key 'taget' (did you mean 'target'?)`."""
    pool = known_keys() if keys is None else keys
    hint = difflib.get_close_matches(key, [k for k in pool if k != key], n=1)
    return f"unknown key '{key}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")


def dotted(loc: Loc) -> str:
    """`objectives[0].key_results[1].target` for a location in the YAML."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def located(
    doc: YamlDoc, exc: ValidationError, prefix: Loc = (), keys: Iterable[str] | None = None
) -> list[Problem]:
    """Every error of `exc` (raised validating the data at `prefix`) at its file:line."""
    problems = []
    for error in exc.errors():
        raw = _untagged(tuple(error["loc"]))
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            raw = (*raw, str(error["ctx"]["discriminator"]).strip("'"))  # name the `type:`
        loc = data_loc(doc.data, (*prefix, *raw))
        text = message(error, loc, keys)
        problems.append(Problem(doc.file, doc.line_of(loc), dotted(loc), text))
    problems.sort(key=lambda p: p.line or 0)
    return problems


def _untagged(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Pydantic's loc without what names no place in the YAML: the form tag after a
    `push:` entry's index (`push[0].name`) and the `[key]` of a mapping key's error."""
    out = []
    for i, part in enumerate(loc):
        tag = i >= 2 and loc[i - 2] == "push" and isinstance(loc[i - 1], int)
        if (tag and part in PUSH_TAGS) or (part == "[key]" and i == len(loc) - 1):
            continue
        out.append(part)
    return tuple(out)


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


def message(error: Any, loc: Loc, keys: Iterable[str] | None = None) -> str:
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
    sink_secret = len(loc) == 3 and str(loc[-1]) in SECRET_KEYS | {"headers"}
    if kind == "extra_forbidden" and loc[0] == "sinks" and sink_secret:
        stem = env_name(str(loc[1]), "")
        wanted = "SECRET" if "webhook" in error["loc"] else "TOKEN"
        return (
            f"unknown key '{loc[-1]}': secrets never go in the config; set {stem}{wanted} "
            f"(or {stem}{wanted}_FILE) in the environment"
        )
    if kind == "extra_forbidden":
        return unknown_key(str(loc[-1]), keys)
    if kind == "string_pattern_mismatch":
        pattern = str(error.get("ctx", {}).get("pattern", ""))
        if pattern == DURATION_PATTERN:
            return f"'{error['input']}' is not a duration: write e.g. 30s, 5m, 1h, 1d"
        if pattern == SINK_NAME_PATTERN:
            return f"'{error['input']}' is not a valid sink name (letters, digits, '-', '_')"
        if loc and loc[-1] == "id":
            return f"'{error['input']}' is not a valid id (letters, digits, '-', '_', '.', ':')"
        return f"'{error['input']}' does not match {pattern}"
    if kind == "string_type":
        return _not_a_string(error["input"], str(loc[-1]) if loc else "value")
    if kind in ("list_type", "dict_type") and error["input"] is None and loc:
        default = "list at least one item" if kind == "list_type" else "write at least one key"
        return f"is empty: {EMPTY.get(str(loc[-1]), default)} under it, or remove the key"
    if kind == "union_tag_not_found" and loc and loc[0] == "sinks":
        return f"field required: one of {', '.join(SINK_TYPES)}"
    if kind == "union_tag_invalid" and loc and loc[0] == "sinks":
        return f"{error['ctx']['tag']!r} is not one of {', '.join(SINK_TYPES)}"
    if kind == "push_entry":
        return f"{PUSH_ENTRY}, got {_as_written(error['input'])}"
    if kind == "issue_form":
        return f"{ISSUE}, got {_as_written(error['input'])}"
    if kind == "list_type" and loc and loc[-1] == "push" and isinstance(error["input"], str):
        return f"write a list: push: [{error['input']}]"
    if kind == "literal_error":
        allowed = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
        return f"{error['input']!r} is not one of {', '.join(allowed)}"
    text = str(error["msg"]).removeprefix("Value error, ")
    return text[:1].lower() + text[1:]


def _as_written(value: Any) -> str:
    """A YAML value as the person wrote it: 0, true, null, a list, a mapping."""
    if value is None:
        return "an empty entry"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return str(value)


def _not_a_string(value: Any, key: str) -> str:
    """What YAML made of an unquoted value where text belongs, and how to quote it."""
    if key == "every" and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value!r} is not a duration: write a duration such as {value:g}m (or 30s, 1h, 1d)"
    if isinstance(value, dict):
        keys = ", ".join(str(k) for k in value)
        example = f" ({key}: '{{{keys}}}')" if all(v is None for v in value.values()) else ""
        return f"YAML read this as a mapping: quote the {key}{example}"
    if isinstance(value, list):
        return f"YAML read this as a list: quote the {key}"
    if isinstance(value, bool):
        return f"YAML read this as the boolean {str(value).lower()}: quote it if it is text"
    if isinstance(value, int | float):
        return f'YAML read this as the number {value!r}: quote it if it is text ({key}: "{value}")'
    return "input should be a valid string"
