"""The config's JSON Schema, generated from the models (shipped as config/okrsync.schema.json)."""

from __future__ import annotations

import json

from okrsync.config.model import ConfigFile

SCHEMA_ID = "https://okrsync.dev/schema/config-v1.json"


def schema_json() -> str:
    schema = ConfigFile.model_json_schema()
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **{k: v for k, v in schema.items() if k != "$schema"},
    }
    return json.dumps(schema, indent=2, sort_keys=False)
