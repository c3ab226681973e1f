"""The config's JSON Schema, generated from okrsync's models and the installed connectors'
(shipped as config/okrsync.schema.json), so editors complete and check the YAML."""

from __future__ import annotations

import json
from typing import Any

from okrsync.config import plugins
from okrsync.config.model import ConfigFile

SCHEMA_ID = "https://okrsync.dev/schema/config-v1.json"


def schema() -> dict[str, Any]:
    """The schema: `sources` entries are one of the connectors' source models (by `type`),
    and KRs and formula inputs take the query keys of every installed connector."""
    base = ConfigFile.model_json_schema()
    defs: dict[str, Any] = base.setdefault("$defs", {})
    sources: list[dict[str, Any]] = []
    mapping: dict[str, str] = {}
    query: dict[str, Any] = {}
    for type_name in plugins.type_names():
        try:
            found = plugins.plugin(type_name)
        except plugins.PluginError:
            continue
        source = found.source_model.model_json_schema()
        defs.update(source.pop("$defs", {}))
        source["properties"]["type"] = {"const": type_name, "title": "Type"}
        source["required"] = ["type", *(r for r in source.get("required", []) if r != "type")]
        defs[found.source_model.__name__] = source
        sources.append({"$ref": f"#/$defs/{found.source_model.__name__}"})
        mapping[type_name] = f"#/$defs/{found.source_model.__name__}"
        fields = found.query_model.model_json_schema(by_alias=True)
        defs.update(fields.pop("$defs", {}))
        for key, given in fields.get("properties", {}).items():
            prop = {"anyOf": [given, {"type": "null"}]}  # `key: null` is as good as absent
            if key not in query:
                query[key] = prop
            elif prop != query[key]:
                query[key] = {"anyOf": [query[key], prop]}
    base["properties"]["sources"] = {
        **base["properties"]["sources"],
        "additionalProperties": {
            "discriminator": {"mapping": mapping, "propertyName": "type"},
            "oneOf": sources,
        },
    }
    for name in ("KeyResult", "Measure"):
        if name in defs:
            defs[name]["properties"] = {**defs[name]["properties"], **query}
            defs[name]["additionalProperties"] = False
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **{k: v for k, v in base.items() if k != "$schema"},
    }


def schema_json() -> str:
    return json.dumps(schema(), indent=2, sort_keys=False)
