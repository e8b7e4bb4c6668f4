"""orjson (de)serialisation of contracts, with one typed error for anything unreadable."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar, get_origin

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from schemas.envelope import SCHEMA_VERSION
from schemas.errors import MalformedRecord

T = TypeVar("T")


def _summarise(error: ValidationError, limit: int = 5) -> str:
    problems = [
        f"{'.'.join(str(part) for part in e['loc']) or '<record>'}: {e['msg']}" for e in error.errors()[:limit]
    ]
    more = error.error_count() - limit
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")


def _tagged(value: Any, data: Any) -> Any:
    """``data`` (``value`` dumped without defaults) with every tag of ``value`` put back."""
    if isinstance(value, BaseModel) and isinstance(data, dict):
        for name, field in type(value).model_fields.items():
            if get_origin(field.annotation) is Literal:
                data[name] = getattr(value, name)
            elif name in data:
                _tagged(getattr(value, name), data[name])
    elif isinstance(value, list | tuple) and isinstance(data, list):
        for item, dumped in zip(value, data):
            _tagged(item, dumped)
    elif isinstance(value, dict) and isinstance(data, dict):
        for key, dumped in data.items():
            _tagged(value.get(key), dumped)
    return data


class Codec(Generic[T]):
    """Reads and writes one contract (a model or a discriminated union of models)."""

    def __init__(self, name: str, contract: Any):
        self.name = name
        self.contract = contract
        self._adapter: TypeAdapter[T] = TypeAdapter(contract)

    def encode(self, value: T) -> bytes:
        # Enum-keyed maps (state transitions) need OPT_NON_STR_KEYS.
        return orjson.dumps(self._adapter.dump_python(value), option=orjson.OPT_NON_STR_KEYS)

    def encode_compact(self, value: T) -> bytes:
        """``encode`` without the fields left at their defaults, which ``decode`` fills in again:
        for a record kept by the million (the document registry), where defaults were most of it.
        Tags (``Literal`` fields, which pick a union's member) are kept."""
        data = self._adapter.dump_python(value, mode="json", exclude_defaults=True)
        return orjson.dumps(_tagged(value, data), option=orjson.OPT_NON_STR_KEYS)

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
