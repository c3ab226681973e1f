"""Validate a config file piece by piece, keeping the valid pieces with their places.

Cross-checks (parents, duplicate ids, sources) then still run where other parts of the
file are invalid, so one `validate` reports every problem instead of two rounds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from okrsync.config.model import ConfigFile, Defaults, KeyResult, Objective, Period
from okrsync.config.sinks import Sink, is_sink_name
from okrsync.connector import SourceBase


@dataclass
class Part:
    """The valid pieces of one file; `objectives` holds (index, objective, KR indexes).

    `sources` are filled in by the loader, which validates them with their connectors.
    """

    period: Period | None = None
    defaults: Defaults | None = None
    sources: dict[str, SourceBase] = field(default_factory=dict)
    sinks: dict[str, Sink] = field(default_factory=dict)
    sink_names: set[str] = field(default_factory=set)  # valid or not: defined here
    objectives: list[tuple[int, Objective, list[int]]] = field(default_factory=list)
    sets: set[str] = field(default_factory=set)
    invalid_ids: set[str] = field(default_factory=set)
    invalid_sources: set[str] = field(default_factory=set)
    invalid_types: dict[str, str] = field(default_factory=dict)  # invalid, of a known type


M = TypeVar("M", bound=BaseModel)


def _valid(model: type[M], value: Any) -> M | None:
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


_SINK: TypeAdapter[Sink] = TypeAdapter(Sink)


def _valid_sink(value: Any) -> Sink | None:
    try:
        return _SINK.validate_python(value)
    except ValidationError:
        return None


def _id_of(raw: Any) -> str | None:
    return raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None


def _set_once(data: dict[str, Any]) -> set[str]:
    """The keys a config directory may set in one file only, that this file sets."""
    return {k for k in ("period", "defaults") if k in data}


def whole(file: ConfigFile, data: dict[str, Any]) -> Part:
    """A file that validated as a whole: every piece, each at its own place."""
    return Part(
        sink_names=set(file.sinks),
        period=file.period,
        defaults=file.defaults,
        sinks=dict(file.sinks),
        objectives=[(i, o, list(range(len(o.key_results)))) for i, o in enumerate(file.objectives)],
        sets=_set_once(data),
    )


def salvage(data: dict[str, Any]) -> Part:
    """Every piece of `data` that is valid on its own; ids of invalid ones are remembered."""
    part = Part(sets=_set_once(data))
    part.period = _valid(Period, data.get("period"))
    part.defaults = _valid(Defaults, data.get("defaults")) if "defaults" in data else None
    sinks = data.get("sinks")
    for name, raw_sink in sinks.items() if isinstance(sinks, dict) else ():
        part.sink_names.add(str(name))
        sink = _valid_sink(raw_sink)
        if sink is not None and is_sink_name(name):
            part.sinks[str(name)] = sink
    objectives = data.get("objectives")
    for i, raw in enumerate(objectives if isinstance(objectives, list) else []):
        krs_raw = raw.get("key_results") if isinstance(raw, dict) else None
        krs_raw = krs_raw if isinstance(krs_raw, list) else []
        good: list[tuple[int, KeyResult]] = []
        for j, kr_raw in enumerate(krs_raw):
            kr = _valid(KeyResult, kr_raw)
            if kr is not None:
                good.append((j, kr))
            elif _id_of(kr_raw):
                part.invalid_ids.add(str(_id_of(kr_raw)))
        shell = {**raw, "key_results": []} if isinstance(raw, dict) else raw
        objective = _valid(Objective, shell)
        if objective is None:
            if _id_of(raw):
                part.invalid_ids.add(str(_id_of(raw)))
            continue
        objective = objective.model_copy(update={"key_results": [kr for _, kr in good]})
        part.objectives.append((i, objective, [j for j, _ in good]))
    return part
