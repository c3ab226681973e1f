"""Reads YAML keeping where every key and item sits, so errors can say file:line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from okrsync.errors import ConfigError, Problem

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class YamlDoc:
    """Plain data of one file plus the 1-based line of each key path in it."""

    file: str
    data: Any
    lines: dict[Loc, int]

    def line_of(self, loc: Loc) -> int | None:
        """Line of the deepest existing node along `loc` (the parent, for a missing key)."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return None


def _plain(node: Any, loc: Loc, lines: dict[Loc, int]) -> Any:
    if isinstance(node, CommentedMap):
        lines.setdefault(loc, node.lc.line + 1)
        out: dict[Any, Any] = {}
        for key, value in node.items():
            name = str(key)
            lines[(*loc, name)] = node.lc.key(key)[0] + 1
            out[name] = _plain(value, (*loc, name), lines)
        return out
    if isinstance(node, CommentedSeq):
        lines.setdefault(loc, node.lc.line + 1)
        items = []
        for i, value in enumerate(node):
            lines[(*loc, i)] = node.lc.item(i)[0] + 1
            items.append(_plain(value, (*loc, i), lines))
        return items
    if isinstance(node, bool | int | float | str | date | datetime) or node is None:
        return _scalar(node)
    return node


def _scalar(node: Any) -> Any:
    """ruamel's scalar subclasses turned into the builtin types pydantic expects."""
    for kind in (bool, int, float, str):
        if isinstance(node, kind):
            return kind(node)
    return node


def load_yaml(path: Path, display: str | None = None) -> YamlDoc:
    """Parse one YAML file; a syntax error becomes a ConfigError at its line."""
    name = display or str(path)
    yaml = YAML(typ="rt")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem(name, None, "", f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError:
        raise ConfigError([Problem(name, None, "", "not UTF-8 text")]) from None
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = exc.problem or exc.context or "invalid YAML"
        raise ConfigError([Problem(name, line, "", f"YAML syntax: {what}")]) from None
    except Exception as exc:  # ruamel raises a few unmarked errors (duplicate keys, bad tags)
        raise ConfigError([Problem(name, None, "", f"YAML: {exc}")]) from None
    lines: dict[Loc, int] = {}
    return YamlDoc(name, _plain(data, (), lines), lines)
