"""Stage status reports, sent on the status topic through the stage's producer.

They go out in the same batch as the stage's outputs, so they are acknowledged before the
input offsets are committed."""

from __future__ import annotations

from typing import Any

from schemas import DocumentStatus, Envelope, Stage, StatusEvent
from services.runtime.producer import Producer
from topics.catalog import STATUS


class StatusEmitter:
    def __init__(self, producer: Producer, stage: Stage):
        self._producer = producer
        self.stage = stage

    def emit(self, about: Envelope, status: DocumentStatus, **fields: Any) -> None:
        self.emit_for(about.identity(), status, **fields)

    def emit_for(self, identity: dict[str, Any], status: DocumentStatus, **fields: Any) -> None:
        event = StatusEvent(**identity, status=status, stage=self.stage, **fields)
        self._producer.publish(STATUS, event)
