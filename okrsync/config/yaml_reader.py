"""Reads YAML keeping where every key and item sits, so errors can say file:line.

PyYAML's C (libyaml) composer builds the node tree, which carries line marks; we turn
nodes into plain data ourselves, recording lines and rejecting duplicate keys.

Bounded by default: only regular files are read (never a FIFO or a device), at most
MAX_BYTES of each, and the composed tree is measured before any data is built, so aliases
cannot expand a small file into millions of values (the "billion laughs") and nesting
stays shallow.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from okrsync.errors import ConfigError, Problem

Loc = tuple[str | int, ...]
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_BYTES = 1024 * 1024  # per file; a config this big is a mistake (or an attack)
MAX_ALIAS_NODES = 10_000  # values that aliases may add to one file, in all
MAX_NESTING = 64  # levels of mappings and lists; a real config uses about 6


@dataclass(frozen=True)
class YamlDoc:
    """Plain data of one file plus the 1-based line of each key path in it."""

    file: str
    data: Any
    lines: dict[Loc, int]
    raw: bytes = field(default=b"", compare=False, repr=False)  # the bytes that were parsed

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


Where = tuple[int, Loc]


class _Refused(Exception):
    """The composed tree breaks a bound; carries the problem to report."""

    def __init__(self, line: int, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.line, self.loc, self.message = line, loc, message


class _Bounds:
    """Walks the composed tree as it would be built, without building it.

    An alias is the same node object met again, so a copy is any node met a second time,
    and everything under it. Copies are counted and the walk stops at MAX_ALIAS_NODES:
    time and memory stay bounded however far the aliases would expand.
    """

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.open: set[int] = set()  # collections on the path from the root
        self.copies = 0

    def walk(self, node: yaml.Node, loc: Loc, line: int, depth: int, alias: Where | None) -> None:
        """`alias` is where the outermost alias being expanded was written, if any."""
        key = id(node)
        if key in self.open:
            raise _Refused(
                line, loc, "an alias refers to the value that holds it: write the value out"
            )
        if alias is None and key in self.seen:
            alias = (line, loc)
        if alias is not None:
            self.copies += 1
            if self.copies > MAX_ALIAS_NODES:
                raise _Refused(
                    *alias,
                    f"aliases (*name) expand to more than {MAX_ALIAS_NODES:,} values "
                    "(an alias bomb?): write the values out, or alias single values only",
                )
        if depth > MAX_NESTING:
            raise _Refused(
                line, loc, f"nested more than {MAX_NESTING} levels deep: flatten the YAML"
            )
        self.seen.add(key)
        if isinstance(node, yaml.MappingNode):
            self.open.add(key)
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                self.walk(key_node, loc, key_line, depth + 1, alias)
                name = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
                self.walk(value_node, (*loc, str(name)), key_line, depth + 1, alias)
            self.open.discard(key)
        elif isinstance(node, yaml.SequenceNode):
            self.open.add(key)
            for i, item in enumerate(node.value):
                # an alias item has no mark of its own (the node's is the anchor's): use ours
                item_line = line if id(item) in self.seen else item.start_mark.line + 1
                self.walk(item, (*loc, i), item_line, depth + 1, alias)
            self.open.discard(key)


def _check_bounds(file: str, node: yaml.Node) -> None:
    try:
        _Bounds().walk(node, (), node.start_mark.line + 1, 0, None)
    except _Refused as exc:
        raise ConfigError([Problem(file, exc.line, _dotted(exc.loc), exc.message)]) from None


def _not_regular(mode: int) -> str:
    kind = next(
        (
            what
            for test, what in (
                (stat.S_ISFIFO, "a FIFO?"),
                (stat.S_ISCHR, "a character device?"),
                (stat.S_ISBLK, "a block device?"),
                (stat.S_ISSOCK, "a socket?"),
                (stat.S_ISDIR, "a directory"),
            )
            if test(mode)
        ),
        "not a file",
    )
    return f"not a regular file ({kind}): the config is a YAML file or a directory of them"


def read_bounded(path: Path, name: str) -> bytes:
    """The bytes of the regular file at `path`, at most MAX_BYTES, else a one-line ConfigError.

    A FIFO or device is never opened for reading in blocking mode: stat first, then open
    non-blocking and check the opened file again (it may have been swapped in between).
    """

    def refuse(message: str) -> ConfigError:
        return ConfigError([Problem(name, None, "", message)])

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise refuse(_not_regular(os.stat(path).st_mode))
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        if path.is_symlink():
            raise refuse(
                f"broken symlink (points to '{os.readlink(path)}', which does not exist): "
                "fix or remove the link"
            ) from None
        raise refuse("no such file or directory") from None
    except OSError as exc:
        raise refuse(f"cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise refuse(_not_regular(os.fstat(fd).st_mode))
            raw = handle.read(MAX_BYTES + 1)
        except OSError as exc:
            raise refuse(f"cannot read: {exc.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise refuse(
            f"larger than {MAX_BYTES // (1024 * 1024)} MiB, the most a config file may hold: "
            "split it into several files in one directory"
        )
    return raw


_INDENT = "keys of one mapping, and items of one list, start in the same column"
_DEDENT = (
    "did not find expected key",
    "did not find expected '-' indicator",
    "expected <block end>",
)
_KEY_BEFORE = re.compile(r"([^\s{},\[\]:#'\"]+)\s*:\s*$")
_KEY_VALUE = re.compile(r"^\s*(?:-\s+)*([^\s:#'\"][^:#]*?):\s+(.*)$")


def _quoted(key: str | None, value: str) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return f"{key}: {text}" if key else text


def _value_at(line: str, col: int) -> str:
    """The unquoted value starting at `col`: to the end of the line, or of the flow item."""
    before = line[:col]
    rest = line[col:]
    if before.count("{") + before.count("[") > before.count("}") + before.count("]"):
        rest = re.split(r"[,}\]]", rest, maxsplit=1)[0]
    return re.split(r"\s#", rest, maxsplit=1)[0].strip()


def syntax_message(exc: yaml.MarkedYAMLError, text: str) -> tuple[int | None, str]:
    """The line of a YAML syntax error, and what to write instead where we can tell."""
    mark = exc.problem_mark or exc.context_mark
    what = exc.problem or exc.context or "invalid YAML"
    if mark is None:
        return None, what
    number = mark.line + 1
    lines = text.splitlines()
    line = lines[mark.line] if mark.line < len(lines) else ""
    char = line[mark.column : mark.column + 1]
    problem = exc.problem or ""
    if problem.startswith("found character that cannot start any token") and char == "\t":
        return number, f"line {number} is indented with a tab: YAML takes spaces only"
    if problem.startswith("found character that cannot start any token") and char in "%@`":
        found = _KEY_BEFORE.search(line[: mark.column])
        value = _value_at(line, mark.column)
        return number, (
            f"'{char}' cannot start an unquoted value: quote it: "
            + _quoted(found.group(1) if found else None, value)
        )
    if problem.startswith(_DEDENT):
        return number, f"check the indentation of line {number} ({_INDENT})"
    if problem.startswith("mapping values are not allowed"):
        pair = _KEY_VALUE.match(line)
        if pair and mark.column > line.index(":"):
            return number, (
                "a value holding ': ' must be quoted: "
                + _quoted(pair.group(1), re.split(r"\s#", pair.group(2))[0].strip())
            )
        return number, (
            f"check the indentation of line {number} (deeper than the key above it?), "
            "or quote a value holding ': '"
        )
    return number, what


def load_yaml(path: Path, display: str | None = None) -> YamlDoc:
    """Parse one YAML file; syntax errors and duplicate keys become a ConfigError at their line."""
    name = display or str(path)
    raw = read_bounded(path, name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([Problem(name, None, "", "not UTF-8 text")]) from None
    try:
        node = yaml.compose(text, Loader=_Loader)
        if node is not None:
            _check_bounds(name, node)
        builder = _Builder(name)
        data = None if node is None else builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        line, what = syntax_message(exc, text)
        raise ConfigError([Problem(name, line, "", f"YAML syntax: {what}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(name, None, "", f"YAML: {exc}")]) from None
    except RecursionError:  # only the pure-Python parser recurses (libyaml has a bound)
        raise ConfigError(
            [Problem(name, None, "", "YAML nested too deeply: flatten the YAML")]
        ) from None
    if builder.problems:
        raise ConfigError(builder.problems)
    return YamlDoc(name, data, builder.lines, raw)


def load_documents(raw: bytes, name: str) -> list[Any]:
    """Every YAML document of `raw` (a file read with `read_bounded`) as plain data, each
    bounded as a config file is (aliases, nesting); a ConfigError says what is wrong."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([Problem(name, None, "", "not UTF-8 text")]) from None
    documents = []
    try:
        for node in yaml.compose_all(text, Loader=_Loader):
            _check_bounds(name, node)
            builder = _Builder(name)
            documents.append(builder.build(node, ()))
            if builder.problems:
                raise ConfigError(builder.problems)
    except yaml.MarkedYAMLError as exc:
        line, what = syntax_message(exc, text)
        raise ConfigError([Problem(name, line, "", f"YAML syntax: {what}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(name, None, "", f"YAML: {exc}")]) from None
    except RecursionError:
        raise ConfigError([Problem(name, None, "", "YAML nested too deeply")]) from None
    return documents
