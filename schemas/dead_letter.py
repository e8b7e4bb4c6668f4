"""The dlq topic: a record a stage gave up on, kept byte for byte with the reason."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Literal
from uuid import UUID, uuid4

from pydantic import Field, model_validator

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
    # The original value: inline (base64) when small, else stored in the blob store (claim check).
    source_value_b64: str | None = Field(default=None, description="the original value, base64")
    source_value_uri: str | None = Field(default=None, description="where a large original value is stored")
    source_headers: list[tuple[str, str]] = Field(default_factory=list, description="(name, value base64)")
    # Filled in when the record parsed far enough to name its document.
    tenant_id: str | None = None
    dataset_id: str | None = None
    document_id: str | None = None
    revision: int | None = None

    @model_validator(mode="after")
    def _original_kept_once(self) -> DeadLetter:
        if (self.source_value_b64 is None) == (self.source_value_uri is None):
            raise ValueError("exactly one of source_value_b64 and source_value_uri")
        return self

    @property
    def inline_value(self) -> bytes | None:
        """The original value when it travels inline; None when it is in the blob store."""
        return base64.b64decode(self.source_value_b64) if self.source_value_b64 is not None else None
