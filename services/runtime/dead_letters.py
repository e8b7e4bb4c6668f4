"""Send a record a stage gave up on to the DLQ, and mark its document ``error`` with the reason."""

from __future__ import annotations

import base64
import logging
from typing import Any

import orjson
from confluent_kafka import Message
from pydantic import ValidationError

from schemas import DEAD_LETTERS, DeadLetter, DocumentStatus, Envelope
from services.runtime.producer import Producer
from services.runtime.status import StatusEmitter
from topics.catalog import DLQ

log = logging.getLogger(__name__)

_IDENTITY = ("tenant_id", "dataset_id", "document_id", "revision")


def identity_of(raw: bytes | None) -> dict[str, Any] | None:
    """The document a record is about, if it gets that far in parsing; None otherwise."""
    try:
        data = orjson.loads(raw or b"")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not all(k in data for k in _IDENTITY):
        return None
    identity = {k: data[k] for k in _IDENTITY}
    try:
        # Validate through the envelope so a half-broken record can't break the status event too.
        Envelope(type="probe", **identity)
    except ValidationError:
        return None
    return identity


def describe(error: BaseException) -> str:
    return str(error) or type(error).__name__


class DeadLetters:
    def __init__(self, producer: Producer, status: StatusEmitter):
        self._producer = producer
        self._status = status

    def send(self, message: Message, error: BaseException, attempts: int) -> None:
        identity = identity_of(message.value())
        key = message.key()
        letter = DeadLetter(
            stage=self._status.stage.value,
            error=describe(error),
            error_type=type(error).__name__,
            attempts=attempts,
            source_topic=message.topic(),
            source_partition=message.partition(),
            source_offset=message.offset(),
            source_key=key.decode("utf-8", "replace") if key is not None else None,
            source_value_b64=base64.b64encode(message.value() or b"").decode(),
            source_headers=[(k, base64.b64encode(v or b"").decode()) for k, v in message.headers() or []],
            **(identity or {}),
        )
        log.warning(
            "dead-lettered %s[%d]@%d after %d attempt(s): %s",
            message.topic(), message.partition(), message.offset(), attempts, letter.error,
        )
        self._producer.send(self._producer.settings.topic(DLQ.name), key, DEAD_LETTERS.encode(letter))
        if identity is not None:
            self._status.emit_for(identity, DocumentStatus.ERROR, error=letter.error, attempts=attempts)
