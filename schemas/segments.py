"""The segments and embedded topics: token-bounded chunks, then the same chunks with vectors."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from schemas.content import DocumentPart
from schemas.envelope import Contract


class Segment(Contract):
    # Deterministic (document, revision, position): a redelivered segment overwrites itself.
    segment_id: str
    position: int = Field(ge=0)
    kind: Literal["chunk", "parent", "child"] = "chunk"
    parent_id: str | None = None
    content: str
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    tokens: int = Field(ge=0)
    word_count: int = Field(ge=0)
    page: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _children_name_their_parent(self) -> Segment:
        if (self.kind == "child") != (self.parent_id is not None):
            raise ValueError("a child segment, and only a child, names its parent_id")
        return self


class EmbeddedSegment(Segment):
    # None for economy documents and parent segments, which are never matched by vector.
    vector: list[float] | None = None


class SegmentBatch(DocumentPart):
    type: Literal["document.segments"] = "document.segments"
    segments: list[Segment]


class EmbeddedBatch(DocumentPart):
    type: Literal["document.embedded"] = "document.embedded"
    model: str | None = Field(default=None, description="None when nothing was embedded (economy)")
    dims: int | None = Field(default=None, ge=1)
    segments: list[EmbeddedSegment]
