"""What each topic carries. Every pipeline topic is keyed by the document ("tenant/document") and
shares one partition count, so a document's records stay ordered in one partition of each.

The four topics a document flows down have two lanes: interactive records on the topic itself,
bulk ones on "<topic>.bulk". A stage reads both and serves the interactive lane first; a
document's records on different lanes are ordered by their revisions, not by Kafka."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import schemas
from schemas import Codec, Priority, Stage

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str  # without the deployment's prefix
    codec: Codec
    description: str
    key: str = "tenant_id/document_id"
    configs: Mapping[str, str] = field(default_factory=dict)
    laned: bool = False  # a bulk lane beside it

    def lane(self, priority: Priority) -> TopicSpec:
        """The topic records of ``priority`` travel on."""
        if priority is Priority.BULK and self.laned:
            return replace(self, name=f"{self.name}.bulk", description=f"{self.description} (bulk lane)", laned=False)
        return self

    def lanes(self) -> tuple[TopicSpec, ...]:
        """Every topic of this spec, the interactive lane first."""
        return (self, self.lane(Priority.BULK)) if self.laned else (self,)


DOCUMENTS = TopicSpec(
    "documents",
    schemas.DOCUMENT_EVENTS,
    "Upstream document events: upserted, deleted, control commands.",
    configs={"retention.ms": str(7 * DAY_MS)},
    laned=True,
)
EXTRACTED = TopicSpec(
    "extracted",
    schemas.EXTRACTED,
    "Extracted text of a document, one page range per record.",
    configs={"retention.ms": str(3 * DAY_MS)},
    laned=True,
)
SEGMENTS = TopicSpec(
    "segments",
    schemas.SEGMENTS,
    "Token-bounded segments of one page range.",
    configs={"retention.ms": str(3 * DAY_MS)},
    laned=True,
)
EMBEDDED = TopicSpec(
    "embedded",
    schemas.EMBEDDED,
    "Segments with their vectors, ready for the index.",
    configs={"retention.ms": str(3 * DAY_MS)},
    laned=True,
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
# Every topic on the broker: each contract's topic and its lanes.
TOPICS: tuple[TopicSpec, ...] = tuple(lane for spec in CATALOG for lane in spec.lanes())

# Which topic each consumer-loop stage reads, in the order a document passes them (the projector,
# beside the path, folds every stage's reports). Each stage reads every lane of its input.
STAGE_INPUTS: Mapping[Stage, TopicSpec] = {
    Stage.EXTRACTOR: DOCUMENTS,
    Stage.SPLITTER: EXTRACTED,
    Stage.EMBEDDER: SEGMENTS,
    Stage.INDEXER: EMBEDDED,
    Stage.PROJECTOR: STATUS,
}
