"""The generated JSON Schema: built from the installed connectors' models, and true to them."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from okrsync.config.schema import schema

ROOT = Path(__file__).parent.parent
VALID = sorted((ROOT / "tests" / "configs" / "valid").rglob("*.yaml"))
SHIPPED = sorted((ROOT / "config").glob("*.yaml"))


def as_editors_see(data: Any) -> Any:
    """YAML as a JSON Schema sees it: dates are strings there (PyYAML makes them dates)."""
    if isinstance(data, dict):
        return {k: as_editors_see(v) for k, v in data.items()}
    if isinstance(data, list):
        return [as_editors_see(v) for v in data]
    return data.isoformat() if isinstance(data, date) else data


def check(data: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema())
    return [e.message for e in validator.iter_errors(data)]


@pytest.mark.parametrize("path", SHIPPED + VALID, ids=lambda p: p.name)
def test_valid_configs_pass_the_schema(path: Path) -> None:
    """Every config okrsync accepts is accepted by the schema editors check against."""
    assert check(as_editors_see(yaml.safe_load(path.read_text()))) == []


def test_schema_knows_each_connectors_source_and_query_keys() -> None:
    """Source blocks are checked by their connector's model and KRs take every query key."""
    sources = schema()["properties"]["sources"]["additionalProperties"]
    assert set(sources["discriminator"]["mapping"]) == {"prometheus", "jira", "github", "http"}
    kr = schema()["$defs"]["KeyResult"]
    assert {"query", "reduce", "jql", "search", "repo", "extract", "body"} <= set(kr["properties"])
    assert kr["additionalProperties"] is False


def test_schema_rejects_what_the_loader_rejects() -> None:
    """A misspelt KR key and a source of an unknown type fail the schema too."""
    base = {"period": {"name": "Q", "start": "2026-10-01", "end": "2026-12-31"}}
    typo = {
        **base,
        "sources": {"p": {"type": "prometheus", "url": "http://x"}},
        "objectives": [
            {"id": "o", "title": "O", "key_results": [{"id": "k", "target": 1, "qeury": "up"}]}
        ],
    }
    assert any("qeury" in m for m in check(typo))
    assert check({**base, "sources": {"p": {"type": "nope"}}}) != []
