"""Send a record a stage gave up on to the DLQ, mark its document ``error`` with the reason, close
that revision (no stage works on it any more) and send its retraction downstream, so whatever of
it already reached the index is removed."""

from __future__ import annotations

import base64
import logging
from typing import Any

import orjson
from confluent_kafka import Message
from pydantic import ValidationError

from schemas import DEAD_LETTERS, DeadLetter, DocumentRetracted, DocumentStatus, Envelope, MalformedRecord
from services.runtime.blobs import BlobStore
from services.runtime.errors import PermanentError
from services.runtime.metrics import DEAD_LETTER_WRITES
from services.runtime.producer import Producer
from services.runtime.revisions import Revisions
from services.runtime.status import StatusEmitter
from topics.catalog import DLQ, TopicSpec

log = logging.getLogger(__name__)

_IDENTITY = ("tenant_id", "dataset_id", "document_id", "revision")
# A dead letter carries the original inline up to this size; a larger one is stored in the blob
# store and the letter names it (claim check), so the letter stays far below Kafka's 1 MB.
MAX_INLINE_ORIGINAL_BYTES = 256 * 1024


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


def kept_original(blobs: BlobStore, topic: str, partition: int, offset: int, value: bytes | None) -> dict[str, str]:
    """A dead letter's copy of the original value: inline when small, else in the blob store."""
    value = value or b""
    if len(value) <= MAX_INLINE_ORIGINAL_BYTES:
        return {"source_value_b64": base64.b64encode(value).decode()}
    return {"source_value_uri": blobs.put_dead_letter(topic, partition, offset, value)}


def _reason(error: BaseException) -> str:
    if isinstance(error, MalformedRecord):
        return "malformed"
    return "permanent" if isinstance(error, PermanentError) else "failed"


def describe(error: BaseException) -> str:
    return str(error) or type(error).__name__


class DeadLetters:
    def __init__(
        self, producer: Producer, status: StatusEmitter, revisions: Revisions, retractions_to: TopicSpec | None,
        blobs: BlobStore | None = None,
    ):
        self._producer = producer
        self._status = status
        self._revisions = revisions
        self._retractions_to = retractions_to
        self._blobs = blobs or BlobStore(producer.settings)

    def send(self, message: Message, error: BaseException, attempts: int) -> None:
        """Keep the record in the DLQ and end its document's revision in ``error``."""
        identity = self.keep(message, error, attempts)
        if identity is not None:
            self.fail(identity, describe(error), attempts)

    def keep(self, message: Message, error: BaseException, attempts: int) -> dict[str, Any] | None:
        """Keep the record in the DLQ, nothing more; answer the document it is about, if known."""
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
            source_headers=[(k, base64.b64encode(v or b"").decode()) for k, v in message.headers() or []],
            **self._original(message),
            **(identity or {}),
        )
        log.warning(
            "dead-lettered %s[%d]@%d after %d attempt(s): %s",
            message.topic(), message.partition(), message.offset(), attempts, letter.error,
        )
        self._producer.send(self._producer.settings.topic(DLQ.name), key, DEAD_LETTERS.encode(letter))
        DEAD_LETTER_WRITES.labels(letter.stage, _reason(error)).inc()
        return identity

    def fail(self, identity: dict[str, Any], error: str, attempts: int | None = None) -> None:
        """End the document's revision in ``error``: close it and retract it downstream."""
        retraction = DocumentRetracted(**identity, reason="failed")
        self._revisions.close(retraction)
        self._status.emit_for(identity, DocumentStatus.ERROR, error=error, attempts=attempts)
        if self._retractions_to is not None:
            self._producer.publish(self._retractions_to, retraction)

    def _original(self, message: Message) -> dict[str, str]:
        return kept_original(self._blobs, message.topic(), message.partition(), message.offset(), message.value())
