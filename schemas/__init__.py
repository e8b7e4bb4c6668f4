"""Event contracts of every indexflow topic: versioned pydantic models, read and written with orjson.

A consumer decodes with the topic's codec; anything unreadable raises ``MalformedRecord``.
"""

from typing import Annotated

from pydantic import Field

from schemas.codec import Codec
from schemas.content import DocumentPart, ExtractedContent, Page
from schemas.dead_letter import DeadLetter
from schemas.documents import (
    BlobSource,
    DocumentCommand,
    DocumentDeleted,
    DocumentEvent,
    DocumentUpserted,
    IndexingSpec,
    InlineSource,
    OcrSpec,
    PreProcessingRule,
    ProcessRule,
    Segmentation,
)
from schemas.envelope import SCHEMA_VERSION, Envelope, Priority, document_key
from schemas.errors import MalformedRecord
from schemas.retraction import DocumentRetracted
from schemas.segments import EmbeddedBatch, EmbeddedSegment, Segment, SegmentBatch, segment_id
from schemas.status import RERUN_STATUSES, TERMINAL_STATUSES, DocumentState, DocumentStatus, Stage, StatusEvent

DOCUMENT_EVENTS: Codec[DocumentUpserted | DocumentDeleted | DocumentCommand] = Codec("documents", DocumentEvent)
# Downstream topics carry a document's content and, in the same order, its retractions.
EXTRACTED: Codec[ExtractedContent | DocumentRetracted] = Codec(
    "extracted", Annotated[ExtractedContent | DocumentRetracted, Field(discriminator="type")]
)
SEGMENTS: Codec[SegmentBatch | DocumentRetracted] = Codec(
    "segments", Annotated[SegmentBatch | DocumentRetracted, Field(discriminator="type")]
)
EMBEDDED: Codec[EmbeddedBatch | DocumentRetracted] = Codec(
    "embedded", Annotated[EmbeddedBatch | DocumentRetracted, Field(discriminator="type")]
)
STATUS: Codec[StatusEvent] = Codec("status", StatusEvent)
STATE: Codec[DocumentState] = Codec("state", DocumentState)
DEAD_LETTERS: Codec[DeadLetter] = Codec("dlq", DeadLetter)

__all__ = [
    "SCHEMA_VERSION",
    "RERUN_STATUSES",
    "TERMINAL_STATUSES",
    "BlobSource",
    "Codec",
    "DeadLetter",
    "DocumentCommand",
    "DocumentDeleted",
    "DocumentEvent",
    "DocumentPart",
    "DocumentRetracted",
    "DocumentState",
    "DocumentStatus",
    "DocumentUpserted",
    "EmbeddedBatch",
    "EmbeddedSegment",
    "Envelope",
    "ExtractedContent",
    "IndexingSpec",
    "InlineSource",
    "OcrSpec",
    "MalformedRecord",
    "Page",
    "Priority",
    "PreProcessingRule",
    "ProcessRule",
    "Segment",
    "SegmentBatch",
    "Segmentation",
    "Stage",
    "StatusEvent",
    "document_key",
    "segment_id",
    "DOCUMENT_EVENTS",
    "EXTRACTED",
    "SEGMENTS",
    "EMBEDDED",
    "STATUS",
    "STATE",
    "DEAD_LETTERS",
]
