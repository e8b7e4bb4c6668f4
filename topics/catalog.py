"""What each topic carries. Every pipeline topic is keyed by the document ("tenant/document") and
shares one partition count, so a document's records stay ordered in one partition of each."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import schemas
from schemas import Codec

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str  # without the deployment's prefix
    codec: Codec
    description: str
    key: str = "tenant_id/document_id"
    configs: Mapping[str, str] = field(default_factory=dict)


DOCUMENTS = TopicSpec(
    "documents",
    schemas.DOCUMENT_EVENTS,
    "Upstream document events: upserted, deleted, control commands.",
    configs={"retention.ms": str(7 * DAY_MS)},
)
EXTRACTED = TopicSpec(
    "extracted",
    schemas.EXTRACTED,
    "Extracted text of a document, one page range per record.",
    configs={"retention.ms": str(3 * DAY_MS)},
)
SEGMENTS = TopicSpec(
    "segments",
    schemas.SEGMENTS,
    "Token-bounded segments of one page range.",
    configs={"retention.ms": str(3 * DAY_MS)},
)
EMBEDDED = TopicSpec(
    "embedded",
    schemas.EMBEDDED,
    "Segments with their vectors, ready for the index.",
    configs={"retention.ms": str(3 * DAY_MS)},
)
STATUS = TopicSpec(
    "status",
    schemas.STATUS,
    "Every stage's status reports; the projector's state is rebuilt from this topic alone.",
    # Kept forever: a rebuild replays it from the beginning.
    configs={"retention.ms": "-1"},
)
STATE = TopicSpec(
    "state",
    schemas.STATE,
    "Latest projected state of each document.",
    configs={"cleanup.policy": "compact"},
)
DLQ = TopicSpec(
    "dlq",
    schemas.DEAD_LETTERS,
    "Records a stage gave up on: the original bytes, the error, the stage and the attempts.",
    configs={"retention.ms": str(30 * DAY_MS)},
)

CATALOG: tuple[TopicSpec, ...] = (DOCUMENTS, EXTRACTED, SEGMENTS, EMBEDDED, STATUS, STATE, DLQ)
