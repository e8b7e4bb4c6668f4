"""The contract between a stage and the consumer loop (one small interface per stage)."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from confluent_kafka import Message

from schemas import DocumentCommand, DocumentDeleted, DocumentRetracted, Envelope, MalformedRecord, Stage
from services.runtime.dead_letters import DeadLetters
from services.runtime.logs import add_log_fields
from services.runtime.producer import Producer
from services.runtime.revisions import Revisions, Verdict
from services.runtime.settings import Settings
from services.runtime.status import StatusEmitter
from topics import TopicSpec

log = logging.getLogger(__name__)

# Records no stage hands to ``admit``: they are carried out or passed on whatever their revision.
_NOT_ADMITTED = (DocumentCommand, DocumentDeleted, DocumentRetracted)


def _place(message: Message) -> tuple[str, int, int]:
    return message.topic(), message.partition(), message.offset()


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
    # Whether the stage asks ``admit`` about its records (the projector folds every report).
    checks_revisions: ClassVar[bool] = True
    # What a batch's records may add up to (their values, past the first): a stage holding a
    # batch's output until its flush sizes its batches in bytes as well as records.
    batch_bytes: ClassVar[int | None] = None

    def __init__(self, context: Context):
        self.context = context
        self._decoded: dict[tuple[str, int, int], Envelope] = {}  # by look_ahead, for decode
        self._verdicts: dict[tuple[str, int], Verdict] = {}  # by look_ahead, for admit

    def look_ahead(self, messages: list[Message]) -> None:
        """Decode the batch's records once (``decode`` hands them out) and judge the revisions
        ``admit`` will be asked about, all in one round trip. A verdict is then what checking the
        record as it is handled would say, but for what other processes change meanwhile, which
        the stages downstream (and the indexer, after writing) check again."""
        decoded: dict[tuple[str, int, int], Envelope] = {}
        judged: list[tuple[str, int]] = []
        gated: set[str] = set()  # documents whose gate a record of the batch moves (a pause, a delete)
        for message in messages:
            try:
                event = self.inputs[0].codec.decode(message.value())
            except MalformedRecord:
                continue  # handle decodes it again and fails, and the loop keeps it in the DLQ
            decoded[_place(message)] = event
            if isinstance(event, _NOT_ADMITTED):
                gated.add(event.key)  # the document's records after it are checked as they come
            elif self.checks_revisions and event.key not in gated:
                judged.append((event.key, event.revision))
        verdicts = self.context.revisions.verdicts(judged, observe=True)
        self._decoded, self._verdicts = decoded, dict(zip(judged, verdicts))

    def decode(self, message: Message, keep: bool = False) -> Envelope:
        """The record's event: as ``look_ahead`` decoded it (forgotten then, unless ``keep``: for
        ``prepare``, ahead of ``handle``), or decoded now."""
        event = self._decoded.get(_place(message)) if keep else self._decoded.pop(_place(message), None)
        return event if event is not None else self.inputs[0].codec.decode(message.value())

    def judge(self, event: Envelope) -> Verdict:
        """Whether the event's revision is worth working on: as ``look_ahead`` found, or checked now."""
        return self._verdicts.get((event.key, event.revision)) or self.context.revisions.check(event)

    def prepare(self, messages: list[Message]) -> None:
        """Work the batch's records share, done once before each is handled (one model call for
        all of them, say). Only an optimisation: if it fails, each record is handled on its own."""

    @abstractmethod
    def handle(self, message: Message) -> None: ...

    def admit(self, message: Message, event: Envelope) -> bool:
        """True if ``event`` should be processed; otherwise it is dropped (stale, closed) or
        parked until its document is resumed (paused)."""
        add_log_fields(revision=event.revision)
        verdict = self.judge(event)
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
