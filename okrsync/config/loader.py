"""Loads a config file or directory into one validated Config, reporting every problem.

Each problem is located as `file:line: path: message` for the person editing the YAML.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from okrsync.config import cron, plugins, sloth, templating
from okrsync.config.checks import (
    Origin,
    check_measures,
    check_parent,
    check_push,
    check_source,
    parent_depths,
    unknown_keys,
)
from okrsync.config.duration import parse_duration
from okrsync.config.messages import dotted, located
from okrsync.config.model import MANUAL, ConfigFile, Defaults, KeyResult, Objective, Period
from okrsync.config.salvage import Part, salvage, whole
from okrsync.config.sinks import Sink, is_sink_name
from okrsync.config.yaml_reader import Loc, YamlDoc, load_yaml
from okrsync.connector import SourceBase
from okrsync.errors import ConfigError, Problem
from okrsync.secrets import env_name

__all__ = ["Config", "Origin", "config_files", "load"]


@dataclass(frozen=True)
class Config:
    """The merged, validated config, plus where each objective and KR was written."""

    period: Period
    defaults: Defaults
    sources: dict[str, SourceBase]
    objectives: list[Objective]
    origins: dict[str, Origin] = field(default_factory=dict)
    digest: str = ""
    sinks: dict[str, Sink] = field(default_factory=dict)
    also_read: tuple[Path, ...] = ()
    """Files the config names and reads besides its own (Sloth specs): watched alike."""

    def key_results(self) -> Iterator[tuple[Objective, KeyResult]]:
        for objective in self.objectives:
            for kr in objective.key_results:
                yield objective, kr

    @functools.cached_property
    def _kr_index(self) -> dict[str, tuple[Objective, KeyResult]]:
        return {k.id: (o, k) for o, k in self.key_results()}

    def find_kr(self, kr_id: str) -> tuple[Objective, KeyResult] | None:
        return self._kr_index.get(kr_id)

    def definition(self, kr: KeyResult) -> dict[str, Any]:
        """The KR's definition as the store keeps it (`key_results.definition`, what `plan`
        compares): its fields and, under `sources`, each source it reads as configured
        (`type`, `url`, `timeout`, ...; never a secret: those come from the environment).
        `backfill` is left out: an operational switch, not what the KR measures."""
        out: dict[str, Any] = json.loads(
            kr.model_dump_json(exclude_none=True, exclude={"backfill"})
        )
        names = {kr.source} | {m.source for m in kr.inputs.values()}
        used = {
            n: json.loads(self.sources[n].model_dump_json(exclude_none=True))
            for n in sorted(x for x in names if x is not None and x in self.sources)
        }
        if used:
            out["sources"] = used
        return out

    def backfills(self, kr: KeyResult) -> bool:
        """Whether the daemon backfills the KR when it first sees it (its own or the default)."""
        return self.defaults.backfill if kr.backfill is None else kr.backfill

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
    """The YAML files a `--config` path stands for: the file, or a directory's *.yaml.

    Every *.yaml entry but a directory counts, so a broken symlink or a FIFO is reported
    instead of skipped; Emacs' lock links (`.#okrs.yaml`, always dangling) are not config.
    """
    if path.is_dir():
        return sorted(
            p
            for p in path.iterdir()
            if p.suffix in (".yaml", ".yml") and not p.name.startswith(".#") and not p.is_dir()
        )
    return [path]


def load(path: Path | str) -> Config:
    """Read and validate the config at `path` (file or directory); lists every problem."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():  # a broken link: load_yaml says so
        raise ConfigError([Problem(str(path), None, "", "no such file or directory")])
    files = config_files(path)
    if not files:
        raise ConfigError([Problem(str(path), None, "", "directory has no *.yaml files")])
    problems: list[Problem] = []
    parsed: list[tuple[YamlDoc, Part]] = []
    unreadable = False  # a file we could not parse may hold the period
    digest = hashlib.sha256()  # of the bytes parsed: each file is read once, bounded
    also_read: dict[Path, bytes] = {}
    for file in files:
        try:
            doc = load_yaml(file)
        except ConfigError as exc:
            problems.extend(exc.problems)
            unreadable = True
            continue
        digest.update(doc.raw)
        if doc.data is None:
            continue
        if not isinstance(doc.data, dict):
            problems.append(
                Problem(doc.file, 1, "", "the file must be a mapping of top-level keys")
            )
            unreadable = True
            continue
        if doc.data.get("version") == sloth.SLOTH_VERSION:
            problems.append(Problem(doc.file, doc.line_of(("version",)), "", sloth.NOT_CONFIG))
            continue
        specs = sloth.resolve(doc)
        problems.extend(specs.problems)
        also_read |= specs.files
        try:
            part = whole(ConfigFile.model_validate(doc.data), doc.data)
        except ValidationError as exc:
            problems.extend(p for p in located(doc, exc) if p.path not in specs.unread)
            part = salvage(doc.data)
        problems.extend(unknown_keys(doc))
        _add_sources(doc, part, problems)
        parsed.append((doc, part))
    config = _merge(parsed, problems, files, unreadable)
    if problems or config is None:
        raise ConfigError(sorted(problems, key=lambda p: (p.file, p.line or 0)))
    for spec in sorted(also_read):
        digest.update(also_read[spec])
    return dataclasses.replace(
        config, digest=digest.hexdigest()[:12], also_read=tuple(sorted(also_read))
    )


def _add_sources(doc: YamlDoc, part: Part, problems: list[Problem]) -> None:
    """Validate the file's `sources:` with their connectors' models into `part`."""
    raw = doc.data.get("sources")
    for name, source in raw.items() if isinstance(raw, dict) else ():
        model, found = check_source(doc, str(name), source)
        problems.extend(found)
        if model is None:
            part.invalid_sources.add(str(name))
            kind = source.get("type") if isinstance(source, dict) else None
            if isinstance(kind, str) and kind in plugins.installed():
                part.invalid_types[str(name)] = kind
        else:
            part.sources[str(name)] = model


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
    sinks: dict[str, Sink] = {}
    sink_names: set[str] = set()
    stems: dict[str, tuple[str, Origin]] = {}  # OKRSYNC_<NAME>_ of each sink: its first sink

    def where(doc: YamlDoc, loc: Loc) -> Origin:
        return Origin(doc.file, doc.line_of(loc), dotted(loc), doc, loc)

    def add(origin: Origin, message: str) -> None:
        problems.append(Problem(origin.file, origin.line, origin.path, message))

    first: dict[str, Origin] = {}
    invalid_ids: set[str] = set()
    invalid_sources: set[str] = set()
    invalid_types: dict[str, str] = {}
    for doc, part in parsed:
        invalid_ids |= part.invalid_ids
        invalid_sources |= part.invalid_sources
        invalid_types |= part.invalid_types
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
        for name in sorted(part.sink_names, key=lambda n: (doc.line_of(("sinks", n)) or 0, n)):
            at = where(doc, ("sinks", name))
            if name in sink_names:
                add(at, f"sink '{name}' is defined twice")
            elif is_sink_name(name) and (other := stems.get(env_name(name, ""))):
                add(
                    at,
                    f"sink '{name}' and sink '{other[0]}' ({other[1].file}:{other[1].line}) "
                    f"would both read their credentials from {env_name(name, '')}*: "
                    "rename one of them",
                )
            else:
                stems.setdefault(env_name(name, ""), (name, at))
            sink_names.add(name)
        sinks |= part.sinks
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
    shown = period or Period(name="P", start=date(2000, 1, 1), end=date(2000, 12, 31))
    values = templating.variables(shown.name, shown.start, shown.end, shown.start)
    types = {n: s.type for n, s in sources.items()} | invalid_types
    parents = {o.id: o.parent for o in objectives}
    depths = parent_depths(parents)
    for objective in objectives:
        check_parent(objective, ids, parents, depths, origins[objective.id], add)
        for kr in objective.key_results:
            check_measures(kr, types, invalid_sources, origins, add, values)
            check_push(kr, sink_names, sinks, origins[kr.id], add)
    if problems or period is None:
        return None
    return Config(period, defaults or Defaults(), sources, objectives, origins, sinks=sinks)


def _claim(origins: dict[str, Origin], key: str, origin: Origin, kind: str, add: Any) -> None:
    if key in origins:
        prior = origins[key]
        add(origin, f"duplicate id '{key}': {kind} id already used at {prior.file}:{prior.line}")
    else:
        origins[key] = origin
