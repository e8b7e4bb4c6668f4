"""Event contracts of every indexflow topic: versioned pydantic models, read and written with orjson.

A consumer decodes with the topic's codec; anything unreadable raises ``MalformedRecord``.
"""

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
    PreProcessingRule,
    ProcessRule,
    Segmentation,
)
from schemas.envelope import SCHEMA_VERSION, Envelope, document_key
from schemas.errors import MalformedRecord
from schemas.segments import EmbeddedBatch, EmbeddedSegment, Segment, SegmentBatch
from schemas.status import TERMINAL_STATUSES, DocumentState, DocumentStatus, Stage, StatusEvent

DOCUMENT_EVENTS: Codec[DocumentUpserted | DocumentDeleted | DocumentCommand] = Codec("documents", DocumentEvent)
EXTRACTED: Codec[ExtractedContent] = Codec("extracted", ExtractedContent)
SEGMENTS: Codec[SegmentBatch] = Codec("segments", SegmentBatch)
EMBEDDED: Codec[EmbeddedBatch] = Codec("embedded", EmbeddedBatch)
STATUS: Codec[StatusEvent] = Codec("status", StatusEvent)
STATE: Codec[DocumentState] = Codec("state", DocumentState)
DEAD_LETTERS: Codec[DeadLetter] = Codec("dlq", DeadLetter)

__all__ = [
    "SCHEMA_VERSION",
    "TERMINAL_STATUSES",
    "BlobSource",
    "Codec",
    "DeadLetter",
    "DocumentCommand",
    "DocumentDeleted",
    "DocumentEvent",
    "DocumentPart",
    "DocumentState",
    "DocumentStatus",
    "DocumentUpserted",
    "EmbeddedBatch",
    "EmbeddedSegment",
    "Envelope",
    "ExtractedContent",
    "IndexingSpec",
    "InlineSource",
    "MalformedRecord",
    "Page",
    "PreProcessingRule",
    "ProcessRule",
    "Segment",
    "SegmentBatch",
    "Segmentation",
    "Stage",
    "StatusEvent",
    "document_key",
    "DOCUMENT_EVENTS",
    "EXTRACTED",
    "SEGMENTS",
    "EMBEDDED",
    "STATUS",
    "STATE",
    "DEAD_LETTERS",
]
