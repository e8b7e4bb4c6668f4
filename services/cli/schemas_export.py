"""Write each topic's JSON Schema, for producers and consumers in other languages."""

from __future__ import annotations

from pathlib import Path

import orjson

from schemas import SCHEMA_VERSION, Priority
from topics import CATALOG


def export_json_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in CATALOG:
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"indexflow/{spec.name}.v{SCHEMA_VERSION}.schema.json",
            **spec.codec.json_schema(),
            "x-topic": spec.name,
            "x-topic-description": spec.description,
            "x-key": spec.key,
            # Where a producer sends events whose priority is bulk (imports, backfills).
            **({"x-bulk-topic": spec.lane(Priority.BULK).name} if spec.laned else {}),
        }
        path = directory / f"{spec.name}.v{SCHEMA_VERSION}.schema.json"
        path.write_bytes(orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
        written.append(path)
    return written
