"""Write each topic's JSON Schema, for producers and consumers in other languages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from schemas import SCHEMA_VERSION, Priority
from schemas.edited import SEGMENT_LIST_MIME, SegmentList
from topics import CATALOG


def export_json_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = [
        _write(directory, spec.name, {
            **spec.codec.json_schema(),
            "x-topic": spec.name,
            "x-topic-description": spec.description,
            "x-key": spec.key,
            # Where a producer sends events whose priority is bulk (imports, backfills).
            **({"x-bulk-topic": spec.lane(Priority.BULK).name} if spec.laned else {}),
        })
        for spec in CATALOG
    ]
    # Not a topic's record: the body of an upsert of this mime type (a document given as its segments).
    written.append(_write(directory, "segment-list", {
        **SegmentList.model_json_schema(), "x-mime-type": SEGMENT_LIST_MIME,
    }))
    return written


def _write(directory: Path, name: str, schema: dict[str, Any]) -> Path:
    path = directory / f"{name}.v{SCHEMA_VERSION}.schema.json"
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"indexflow/{path.name}",
        **schema,
    }
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    return path
