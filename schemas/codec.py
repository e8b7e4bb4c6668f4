"""orjson (de)serialisation of contracts, with one typed error for anything unreadable."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import orjson
from pydantic import TypeAdapter, ValidationError

from schemas.envelope import SCHEMA_VERSION
from schemas.errors import MalformedRecord

T = TypeVar("T")


def _summarise(error: ValidationError, limit: int = 5) -> str:
    problems = [
        f"{'.'.join(str(part) for part in e['loc']) or '<record>'}: {e['msg']}" for e in error.errors()[:limit]
    ]
    more = error.error_count() - limit
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")


class Codec(Generic[T]):
    """Reads and writes one contract (a model or a discriminated union of models)."""

    def __init__(self, name: str, contract: Any):
        self.name = name
        self.contract = contract
        self._adapter: TypeAdapter[T] = TypeAdapter(contract)

    def encode(self, value: T) -> bytes:
        # Enum-keyed maps (state transitions) need OPT_NON_STR_KEYS.
        return orjson.dumps(self._adapter.dump_python(value), option=orjson.OPT_NON_STR_KEYS)

    def decode(self, raw: bytes | None) -> T:
        if raw is None:
            raise MalformedRecord(self.name, "record has no value")
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise MalformedRecord(self.name, f"not JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise MalformedRecord(self.name, f"expected a JSON object, got {type(data).__name__}")
        version = data.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise MalformedRecord(
                self.name, f"schema_version {version!r} is not supported (this consumer reads {SCHEMA_VERSION})"
            )
        try:
            return self._adapter.validate_python(data)
        except ValidationError as exc:
            raise MalformedRecord(self.name, _summarise(exc)) from exc

    def json_schema(self) -> dict[str, Any]:
        return self._adapter.json_schema(mode="validation")
