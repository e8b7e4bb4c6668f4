"""Fields every pipeline event carries, and the Kafka key derived from them."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

SCHEMA_VERSION = 1
# The largest revision: the largest integer a JSON number keeps exactly in JavaScript (a Node
# producer), in Redis's Lua (doubles) and in every store downstream (Elasticsearch long).
MAX_REVISION = 2**53 - 1

# No "/" in ids: the record key "tenant/document" must split unambiguously.
Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")]
ContentHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class Priority(StrEnum):
    """The lane a document's records travel on. Every stage serves interactive records first."""

    INTERACTIVE = "interactive"  # someone waits for this document (an edit, a single upload)
    BULK = "bulk"  # imports, re-indexes, model switches, replays and re-drives


def utc_now() -> datetime:
    return datetime.now(UTC)


def document_key(tenant_id: str, document_id: str) -> str:
    """The Kafka key of every record about one document (tenant-qualified)."""
    return f"{tenant_id}/{document_id}"


class Contract(BaseModel):
    # Unknown fields are ignored so producers can add optional fields without a version bump;
    # a breaking change raises schema_version instead.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Envelope(Contract):
    event_id: UUID = Field(default_factory=uuid4)
    type: str
    schema_version: Literal[1] = SCHEMA_VERSION
    tenant_id: Id
    dataset_id: Id
    document_id: Id
    revision: int = Field(
        ge=0, le=MAX_REVISION,
        description="Grows with every upsert of the document; a producer may use its own versions (epoch "
        "milliseconds, say) up to 2^53 - 1, the largest integer JSON keeps exactly in every language.",
    )
    produced_at: datetime = Field(default_factory=utc_now)
    priority: Priority = Field(
        default=Priority.INTERACTIVE,
        description="interactive (the default) or bulk; the lane every stage keeps for the document's records",
    )

    @property
    def key(self) -> str:
        return document_key(self.tenant_id, self.document_id)

    def identity(self) -> dict:
        """The envelope fields that follow a document from stage to stage."""
        return {
            "tenant_id": self.tenant_id,
            "dataset_id": self.dataset_id,
            "document_id": self.document_id,
            "revision": self.revision,
            "priority": self.priority,
        }
