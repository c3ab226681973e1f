"""Reads YAML keeping where every key and item sits, so errors can say file:line.

PyYAML's C (libyaml) composer builds the node tree, which carries line marks; we turn
nodes into plain data ourselves, recording lines and rejecting duplicate keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from okrsync.errors import ConfigError, Problem

Loc = tuple[str | int, ...]
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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


class _Builder:
    """Turns a composed node tree into dicts, lists and scalars, noting lines as it goes."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[Loc, int] = {}
        self.problems: list[Problem] = []
        self.scalars = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(self.build(key_node, (*loc, "<key>")))
                where = (*loc, key)
                if key in out:
                    first = self.lines[where]
                    self.problems.append(
                        Problem(
                            self.file,
                            key_node.start_mark.line + 1,
                            _dotted(where),
                            f"duplicate key (first at line {first})",
                        )
                    )
                    continue
                self.lines[where] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, where)
            self.lines.pop((*loc, "<key>"), None)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        try:
            return self.scalars.construct_object(node, deep=True)
        except (ValueError, TypeError, yaml.YAMLError) as exc:  # e.g. a date 2026-13-01
            what = getattr(exc, "problem", None) or str(exc)
            self.problems.append(
                Problem(
                    self.file,
                    node.start_mark.line + 1,
                    _dotted(loc),
                    f"'{node.value}' is not a valid {node.tag.rpartition(':')[2]}: {what}",
                )
            )
            return None


def _dotted(loc: Loc) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def load_yaml(path: Path, display: str | None = None) -> YamlDoc:
    """Parse one YAML file; syntax errors and duplicate keys become a ConfigError at their line."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem(name, None, "", f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError:
        raise ConfigError([Problem(name, None, "", "not UTF-8 text")]) from None
    try:
        node = yaml.compose(text, Loader=_Loader)
        builder = _Builder(name)
        data = None if node is None else builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = exc.problem or exc.context or "invalid YAML"
        raise ConfigError([Problem(name, line, "", f"YAML syntax: {what}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(name, None, "", f"YAML: {exc}")]) from None
    except RecursionError:
        raise ConfigError([Problem(name, None, "", "YAML: an alias refers to itself")]) from None
    if builder.problems:
        raise ConfigError(builder.problems)
    return YamlDoc(name, data, builder.lines)
