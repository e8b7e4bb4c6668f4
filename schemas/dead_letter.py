"""The dlq topic: a record a stage gave up on, kept byte for byte with the reason."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Literal
from uuid import UUID, uuid4

from pydantic import Field

from schemas.envelope import SCHEMA_VERSION, Contract, utc_now


class DeadLetter(Contract):
    # Not an Envelope: the failed record may be too broken to name its document.
    event_id: UUID = Field(default_factory=uuid4)
    type: Literal["dead_letter"] = "dead_letter"
    schema_version: Literal[1] = SCHEMA_VERSION
    stage: str
    error: str
    error_type: str
    attempts: int = Field(ge=1)
    failed_at: datetime = Field(default_factory=utc_now)
    source_topic: str
    source_partition: int
    source_offset: int
    source_key: str | None
    source_value_b64: str = Field(description="the original value, base64")
    source_headers: list[tuple[str, str]] = Field(default_factory=list, description="(name, value base64)")
    # Filled in when the record parsed far enough to name its document.
    tenant_id: str | None = None
    dataset_id: str | None = None
    document_id: str | None = None
    revision: int | None = None

    @property
    def original_value(self) -> bytes:
        return base64.b64decode(self.source_value_b64)
