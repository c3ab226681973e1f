"""Loads a config file or directory into one validated Config, reporting every problem.

Each problem is located as `file:line: path: message` for the person editing the YAML.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from okrsync.config import cron, templating
from okrsync.config.duration import PATTERN as DURATION_PATTERN
from okrsync.config.duration import parse_duration
from okrsync.config.model import MANUAL, ConfigFile, Defaults, KeyResult, Measure, Objective, Period
from okrsync.config.salvage import Part, salvage, whole
from okrsync.config.sources import SOURCE_MODELS, SourceBase
from okrsync.config.yaml_reader import Loc, YamlDoc, load_yaml
from okrsync.errors import ConfigError, Problem
from okrsync.secrets import env_name

_SECRET_KEYS = {"token", "password", "user", "username", "api_key", "apikey", "secret", "auth"}
_KNOWN_KEYS = sorted(
    {name for m in (ConfigFile, Period, Defaults, Objective, KeyResult) for name in m.model_fields}
    | {name for m in SOURCE_MODELS.values() for name in m.model_fields}
)


@dataclass(frozen=True)
class Origin:
    file: str
    line: int | None
    path: str


@dataclass(frozen=True)
class Config:
    """The merged, validated config, plus where each objective and KR was written."""

    period: Period
    defaults: Defaults
    sources: dict[str, SourceBase]
    objectives: list[Objective]
    origins: dict[str, Origin] = field(default_factory=dict)
    digest: str = ""

    def key_results(self) -> Iterator[tuple[Objective, KeyResult]]:
        for objective in self.objectives:
            for kr in objective.key_results:
                yield objective, kr

    def find_kr(self, kr_id: str) -> tuple[Objective, KeyResult] | None:
        return next(((o, k) for o, k in self.key_results() if k.id == kr_id), None)

    def every_seconds(self, kr: KeyResult) -> float:
        """The KR's measuring interval: its `every`, its cron's longest gap, or the default."""
        if kr.cron:
            return _cron_gap(kr.cron, self.period.starts_at, self.period.timezone)
        return parse_duration(kr.every or self.defaults.every)


@functools.lru_cache(maxsize=1024)
def _cron_gap(text: str, start: datetime, zone: str) -> float:
    """Cached: status and every /metrics scrape ask this for each cron KR."""
    return cron.longest_gap(cron.parse(text), start, zone)


def config_files(path: Path) -> list[Path]:
    """The YAML files a `--config` path stands for: the file, or a directory's *.yaml."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return [path]


def load(path: Path | str) -> Config:
    """Read and validate the config at `path` (file or directory); lists every problem."""
    path = Path(path)
    if not path.exists():
        raise ConfigError([Problem(str(path), None, "", "no such file or directory")])
    files = config_files(path)
    if not files:
        raise ConfigError([Problem(str(path), None, "", "directory has no *.yaml files")])
    problems: list[Problem] = []
    parsed: list[tuple[YamlDoc, Part]] = []
    unreadable = False  # a file we could not parse may hold the period
    for file in files:
        try:
            doc = load_yaml(file)
        except ConfigError as exc:
            problems.extend(exc.problems)
            unreadable = True
            continue
        if doc.data is None:
            continue
        if not isinstance(doc.data, dict):
            problems.append(
                Problem(doc.file, 1, "", "the file must be a mapping of top-level keys")
            )
            unreadable = True
            continue
        try:
            parsed.append((doc, whole(ConfigFile.model_validate(doc.data), doc.data)))
        except ValidationError as exc:
            problems.extend(_located(doc, exc))
            parsed.append((doc, salvage(doc.data)))
    config = _merge(parsed, problems, files, unreadable)
    if problems or config is None:
        raise ConfigError(sorted(problems, key=lambda p: (p.file, p.line or 0)))
    return config


def _merge(
    parsed: list[tuple[YamlDoc, Part]],
    problems: list[Problem],
    files: list[Path],
    unreadable: bool,
) -> Config | None:
    """Merge the files' valid parts and cross-check them (ids, parents, sources)."""
    period: Period | None = None
    defaults: Defaults | None = None
    sources: dict[str, SourceBase] = {}
    objectives: list[Objective] = []
    origins: dict[str, Origin] = {}

    def where(doc: YamlDoc, loc: Loc) -> Origin:
        return Origin(doc.file, doc.line_of(loc), _dotted(loc))

    def add(origin: Origin, message: str) -> None:
        problems.append(Problem(origin.file, origin.line, origin.path, message))

    first: dict[str, Origin] = {}
    invalid_ids: set[str] = set()
    invalid_sources: set[str] = set()
    for doc, part in parsed:
        invalid_ids |= part.invalid_ids
        invalid_sources |= part.invalid_sources
        for name in sorted(part.sets):
            if name in first:
                add(where(doc, (name,)), f"already set in {first[name].file}:{first[name].line}")
            first[name] = where(doc, (name,))
        period = period or part.period
        defaults = defaults or part.defaults
        for name, source in part.sources.items():
            if name == MANUAL:
                add(where(doc, ("sources", name)), "'manual' is reserved for check-in key results")
            elif name in sources:
                add(where(doc, ("sources", name)), f"source '{name}' is defined twice")
            sources[name] = source
            origins[f"source:{name}"] = where(doc, ("sources", name))
        for i, objective, kr_indexes in part.objectives:
            loc: Loc = ("objectives", i)
            _claim(origins, objective.id, where(doc, loc), "objective", add)
            objectives.append(objective)
            for j, kr in zip(kr_indexes, objective.key_results, strict=True):
                kr_loc: Loc = (*loc, "key_results", j)
                _claim(origins, kr.id, where(doc, kr_loc), "key result", add)
                for name in kr.inputs:
                    origins[f"{kr.id}/{name}"] = where(doc, (*kr_loc, "inputs", name))
    if period is None and "period" not in first and not unreadable:
        problems.append(
            Problem(
                str(files[0].parent if len(files) > 1 else files[0]),
                None,
                "period",
                "field required: no file sets `period: {name, start, end}`",
            )
        )
    ids = {o.id for o in objectives} | invalid_ids
    for objective in objectives:
        _check_parent(objective, ids, objectives, origins[objective.id], add)
        for kr in objective.key_results:
            _check_measures(kr, sources, invalid_sources, origins, add)
    if problems or period is None:
        return None
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:12]
    return Config(period, defaults or Defaults(), sources, objectives, origins, digest)


def _claim(origins: dict[str, Origin], key: str, origin: Origin, kind: str, add: Any) -> None:
    if key in origins:
        prior = origins[key]
        add(origin, f"duplicate id '{key}': {kind} id already used at {prior.file}:{prior.line}")
    else:
        origins[key] = origin


def _check_parent(
    objective: Objective, ids: set[str], objectives: list[Objective], origin: Origin, add: Any
) -> None:
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
    parents = {o.id: o.parent for o in objectives}
    seen: list[str] = [objective.id]
    current: str | None = objective.parent
    while current is not None:
        if current in seen:
            add(origin, "parent: cycle of parents: " + " -> ".join([*seen, current]))
            return
        seen.append(current)
        current = parents.get(current)


def _check_measures(
    kr: KeyResult,
    sources: dict[str, SourceBase],
    invalid_sources: set[str],
    origins: dict[str, Origin],
    add: Any,
) -> None:
    measures: list[tuple[Measure, Origin, bool]] = []
    if kr.formula is None:
        measures.append((kr, origins[kr.id], True))
    measures += [(m, origins[f"{kr.id}/{n}"], False) for n, m in kr.inputs.items()]
    for measure, origin, allow_manual in measures:
        if measure.source not in invalid_sources:  # already reported where it is defined
            _check_measure(measure, sources, origin, add, allow_manual=allow_manual)


def _check_measure(
    measure: Measure,
    sources: dict[str, SourceBase],
    origin: Origin,
    add: Any,
    *,
    allow_manual: bool,
) -> None:
    fields = measure.query_fields()
    if measure.source is None:
        add(origin, "source: field required")
        return
    if measure.source == MANUAL:
        if not allow_manual:
            add(origin, "source: a formula input needs an automated source, not 'manual'")
        elif fields:
            add(origin, f"a manual key result takes no query fields ({', '.join(fields)})")
        return
    config = sources.get(measure.source)
    if config is None:
        known = ", ".join(sorted(sources)) or "none defined"
        add(
            origin,
            f"source: '{measure.source}' is not defined under `sources:` (known: {known})",
        )
        return
    kind = type(config)
    type_name = getattr(config, "type", "?")
    extra = sorted(set(fields) - kind.query_fields)
    if extra:
        add(
            origin,
            f"{', '.join(extra)}: not a field of {type_name} sources "
            f"(they take {', '.join(sorted(kind.query_fields))})",
        )
    if not kind.required_one_of & set(fields):
        need = " or ".join(f"`{f}`" for f in sorted(kind.required_one_of))
        add(origin, f"{type_name} sources need {need}")
    for value in fields.values():
        for bad in templating.unknown_placeholders(str(value)):
            add(
                origin,
                f"unknown placeholder {{{bad}}} (known: "
                + ", ".join(f"{{{k}}}" for k in templating.KNOWN)
                + ")",
            )


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _located(doc: YamlDoc, exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = _data_loc(doc.data, tuple(error["loc"]))
        problems.append(Problem(doc.file, doc.line_of(loc), _dotted(loc), _message(error)))
    problems.sort(key=lambda p: p.line or 0)
    return problems


def _data_loc(data: Any, loc: tuple[Any, ...]) -> Loc:
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


def _message(error: Any) -> str:
    kind, loc = error["type"], error["loc"]
    if kind == "missing":
        return "field required"
    if kind == "extra_forbidden" and loc[0] == "sources" and str(loc[-1]) in _SECRET_KEYS:
        stem = env_name(str(loc[1]), "")
        return (
            f"unknown key '{loc[-1]}': secrets never go in the config; set {stem}TOKEN "
            f"(or {stem}USER / {stem}PASSWORD), or their _FILE forms, in the environment"
        )
    if kind == "extra_forbidden":
        key = str(loc[-1])
        hint = difflib.get_close_matches(key, _KNOWN_KEYS, n=1)
        return f"unknown key '{key}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
    if kind == "union_tag_invalid":
        return (
            f"unknown source type '{error['input'].get('type')}' "
            f"(known: {', '.join(SOURCE_MODELS)})"
        )
    if kind == "union_tag_not_found":
        return f"field required: type ({', '.join(SOURCE_MODELS)})"
    if kind == "string_pattern_mismatch":
        if str(error.get("ctx", {}).get("pattern", "")) == DURATION_PATTERN:
            return f"'{error['input']}' is not a duration: write e.g. 30s, 5m, 1h, 1d"
        return f"'{error['input']}' is not a valid id (letters, digits, '-', '_', '.', ':')"
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    return message[:1].lower() + message[1:]
