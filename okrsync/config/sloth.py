"""`slo: {sloth: slos/checkout.yaml#requests-availability}`: an SLO read from a Sloth spec.

A Sloth `prometheus/v1` file (one or more YAML documents) lists `slos:`; the one named
after `#` gives its `sli.events` queries and `objective`, which are filled into the KR's
`slo:` block before the config is validated, so every later step sees an ordinary SLO.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from okrsync.config.messages import dotted
from okrsync.config.slo import WINDOW
from okrsync.config.yaml_reader import Loc, YamlDoc, load_documents, read_bounded
from okrsync.errors import ConfigError, Problem

SLOTH_VERSION = "prometheus/v1"
NOT_CONFIG = (
    "a Sloth spec, not okrsync config: keep Sloth files out of the config folder's "
    "top level (e.g. in slos/) and name them from an SLO KR's `sloth:`"
)
FROM_SLOTH = ("good", "errors", "total", "objective")
_SLOTH_WINDOW = re.compile(r"\{\{\s*\.window\s*\}\}")


class SlothError(ValueError):
    """The reference, the file or the SLO in it cannot give an SLO (the message says why)."""


@dataclass(frozen=True)
class SlothSlo:
    """What okrsync takes from one Sloth SLO: its two queries and objective."""

    errors: str
    total: str
    objective: float


@dataclass
class Resolved:
    """Problems met filling a file's Sloth references, and the Sloth files they read."""

    problems: list[Problem] = field(default_factory=list)
    files: dict[Path, bytes] = field(default_factory=dict)
    unread: set[str] = field(default_factory=set)
    """Dotted paths of the `target`s an SLO's objective gives: when one is still missing,
    the `slo:` block's own problem says why, so "target: field required" is not repeated."""


def as_window(query: str) -> str:
    """A Sloth query with its `{{.window}}` written as okrsync's `{window}`."""
    return _SLOTH_WINDOW.sub(WINDOW, query)


def split(reference: str) -> tuple[str, str]:
    """`slos/checkout.yaml#name` as (path, name)."""
    path, sep, name = reference.partition("#")
    if not sep or not path.strip() or not name.strip():
        raise SlothError(
            f"'{reference}' is not a Sloth reference: write file#slo-name, "
            "e.g. slos/checkout.yaml#requests-availability"
        )
    return path.strip(), name.strip()


def pick(documents: list[Any], name: str, shown: str) -> SlothSlo:
    """The SLO `name` (or `service/name`) of a Sloth file's documents."""
    service, _, wanted = name.rpartition("/") if "/" in name else ("", "", name)
    found: list[tuple[str, dict[str, Any]]] = []
    names: list[str] = []
    for doc in documents:
        if not isinstance(doc, dict) or doc.get("version") != SLOTH_VERSION:
            continue
        slos = doc.get("slos")
        for slo in slos if isinstance(slos, list) else ():
            if isinstance(slo, dict):
                names.append(str(slo.get("name")))
                if str(slo.get("name")) == wanted and service in ("", str(doc.get("service"))):
                    found.append((str(doc.get("service")), slo))
    if not names and not found:
        versions = sorted({str(d.get("version")) for d in documents if isinstance(d, dict)})
        has = f"version: {', '.join(versions)}" if versions else "no mapping"
        raise SlothError(f"{shown} is not a Sloth {SLOTH_VERSION} spec with `slos:` ({has})")
    if not found:
        raise SlothError(f"{shown} has no SLO named '{name}' (it has: {', '.join(names)})")
    if len(found) > 1:
        services = ", ".join(f"#{s}/{wanted}" for s, _ in found)
        raise SlothError(f"{shown} has several SLOs named '{wanted}': write one of {services}")
    return _events(found[0][1], shown, wanted)


def _events(slo: dict[str, Any], shown: str, name: str) -> SlothSlo:
    sli = slo.get("sli")
    events = sli.get("events") if isinstance(sli, dict) else None
    if not isinstance(events, dict):
        kinds = ", ".join(sorted(map(str, sli))) if isinstance(sli, dict) else "none"
        raise SlothError(
            f"SLO '{name}' in {shown}: okrsync reads `sli.events` (error_query and "
            f"total_query); this SLO has sli: {kinds}"
        )
    queries = {k: events.get(k) for k in ("error_query", "total_query")}
    missing = [k for k, v in queries.items() if not isinstance(v, str) or not v.strip()]
    if missing:
        raise SlothError(f"SLO '{name}' in {shown}: sli.events lacks {', '.join(missing)}")
    objective = slo.get("objective")
    if not isinstance(objective, int | float) or isinstance(objective, bool):
        raise SlothError(f"SLO '{name}' in {shown}: `objective` is not a number")
    return SlothSlo(
        errors=as_window(str(queries["error_query"])),
        total=as_window(str(queries["total_query"])),
        objective=float(objective),
    )


def read(base: Path, reference: str) -> tuple[SlothSlo, Path, bytes]:
    """The SLO a reference names, relative to the directory `base`; SlothError says why not."""
    relative, name = split(reference)
    path = base / relative
    try:
        raw = read_bounded(path, relative)
        documents = load_documents(raw, relative)
    except ConfigError as exc:
        first = exc.problems[0]
        where = f":{first.line}" if first.line else ""
        raise SlothError(f"Sloth file {relative}{where}: {first.message}") from None
    return pick(documents, name, relative), path, raw


def resolve(doc: YamlDoc) -> Resolved:
    """Fill every `slo.sloth` of the file's KRs (in `doc.data`) from its Sloth file."""
    out = Resolved()
    data = doc.data if isinstance(doc.data, dict) else {}
    objectives = data.get("objectives")
    for i, objective in enumerate(objectives if isinstance(objectives, list) else []):
        krs = objective.get("key_results") if isinstance(objective, dict) else None
        for j, kr in enumerate(krs if isinstance(krs, list) else []):
            slo = kr.get("slo") if isinstance(kr, dict) else None
            loc: Loc = ("objectives", i, "key_results", j)
            if isinstance(slo, dict) and isinstance(slo.get("sloth"), str):
                _fill(doc, (*loc, "slo"), kr, slo, out)
            if isinstance(kr, dict) and "slo" in kr and "target" not in kr:
                out.unread.add(dotted((*loc, "target")))  # the slo block's problem says why
    return out


def _fill(doc: YamlDoc, loc: Loc, kr: dict[str, Any], slo: dict[str, Any], out: Resolved) -> None:
    where = (*loc, "sloth")

    def problem(text: str, at: Loc = where) -> None:
        out.problems.append(Problem(doc.file, doc.line_of(at), dotted(at), text))

    repeated = [k for k in FROM_SLOTH if k in slo]
    for key in repeated:
        problem(f"comes from the Sloth file: remove `{key}` here, or drop `sloth:`", (*loc, key))
    if repeated:
        return
    try:
        found, path, raw = read(Path(doc.file).parent, slo["sloth"])
    except SlothError as exc:
        problem(str(exc))
        return
    out.files[path] = raw
    slo.update(errors=found.errors, total=found.total, objective=found.objective)
