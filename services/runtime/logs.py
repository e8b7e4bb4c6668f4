"""Log lines of every service: one JSON object per line (``INDEXFLOW_LOG_FORMAT=json``, the
default) with the service and, while a record is in hand, its tenant, document and revision; or
plain text for a terminal.

The record's fields live in a context variable, set by the consumer loop from the record's key
(``tenant/document``) and completed by the stage once it has decoded the revision. Work the loop
hands to its helper thread runs in a copy of that context, which shares the fields: what the stage
adds there, the loop's own lines carry too."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.orjson import OrjsonFormatter

from services.runtime.settings import Settings

_NONE: dict[str, Any] = {}  # outside any log_context: never added to
_FIELDS: ContextVar[dict[str, Any]] = ContextVar("indexflow_log_fields", default=_NONE)
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Every line logged inside carries ``fields`` (None values left out)."""
    token = _FIELDS.set({**_FIELDS.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _FIELDS.reset(token)


def add_log_fields(**fields: Any) -> None:
    """Add fields to the innermost ``log_context`` (nothing outside one)."""
    current = _FIELDS.get()
    if current is not _NONE:
        current.update(fields)


def record_fields(key: bytes | str | None) -> dict[str, str]:
    """tenant and document of a record keyed ``tenant/document``."""
    if not key:
        return {}
    text = key.decode(errors="replace") if isinstance(key, bytes) else key
    tenant, _, document = text.partition("/")
    return {"tenant": tenant, "document": document} if document else {"key": text}


class _ContextFields(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _FIELDS.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def configure_logging(settings: Settings, service: str) -> None:
    """The root logger of a service process: one handler on stderr, in the configured format."""
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(OrjsonFormatter(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            static_fields={"service": service},
            timestamp=True,
        ))
    else:
        handler.setFormatter(logging.Formatter(_TEXT_FORMAT))
    handler.addFilter(_ContextFields())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
