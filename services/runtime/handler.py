"""The contract between a stage and the consumer loop (one small interface per stage)."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from confluent_kafka import Message

from schemas import Envelope, Stage
from services.runtime.dead_letters import DeadLetters
from services.runtime.logs import add_log_fields
from services.runtime.producer import Producer
from services.runtime.revisions import Revisions, Verdict
from services.runtime.settings import Settings
from services.runtime.status import StatusEmitter
from topics import TopicSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    """What the runtime hands a stage: its settings, the producer for its outputs, its status
    emitter, the shared view of which revisions are still worth processing, and the DLQ.
    ``give_way`` is set while a bulk batch is worked on and an interactive record waits: work done
    ahead for the batch (``prepare``) may stop early, as the batch stops at its next record."""

    settings: Settings
    producer: Producer
    status: StatusEmitter
    revisions: Revisions
    dead_letters: DeadLetters
    give_way: threading.Event = field(default_factory=threading.Event)


class Handler(ABC):
    """One pipeline stage. The loop calls ``handle`` for each record of a batch, then ``flush``,
    then waits for the producer's acknowledgements, and only then commits the batch's offsets.

    ``handle`` raises ``PermanentError`` for a bad record, ``DependencyUnavailable`` when a server
    it needs is down, anything else for a failure worth retrying a few times.
    """

    stage: ClassVar[Stage]
    inputs: ClassVar[tuple[TopicSpec, ...]]
    # Where this stage sends a document's retraction when it gives up on one of its records, so
    # the indexer, downstream, removes whatever of that revision already reached the index.
    retractions_to: ClassVar[TopicSpec | None] = None
    # Whether a record this stage gives up on ends its document in ``error`` (every pipeline
    # stage), or is only kept in the DLQ (the projector: a report it cannot fold is not the
    # document's failure).
    fails_documents: ClassVar[bool] = True
    batch_size: ClassVar[int] = 100

    def __init__(self, context: Context):
        self.context = context

    def prepare(self, messages: list[Message]) -> None:
        """Work the batch's records share, done once before each is handled (one model call for
        all of them, say). Only an optimisation: if it fails, each record is handled on its own."""

    @abstractmethod
    def handle(self, message: Message) -> None: ...

    def admit(self, message: Message, event: Envelope) -> bool:
        """True if ``event`` should be processed; otherwise it is dropped (stale, closed) or
        parked until its document is resumed (paused)."""
        add_log_fields(revision=event.revision)
        verdict = self.context.revisions.check(event)
        if verdict is Verdict.PAUSED and not self.context.revisions.park(
            event.key, event.revision, message.topic(), message.key(), message.value()
        ):
            verdict = Verdict.CURRENT  # resumed between the check and the park
        if verdict is Verdict.CURRENT:
            return True
        log.info("%s: %s revision %d skipped (%s)", self.stage.value, event.key, event.revision, verdict.value)
        return False

    def flush(self) -> None:
        """Make this batch's side effects durable (a bulk write, say). Raising rewinds the batch."""

    def close(self) -> None:
        """Release resources at shutdown."""
