"""The segments and embedded topics: token-bounded chunks, then the same chunks with vectors."""

from __future__ import annotations

import base64
import hashlib
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema, model_validator

from schemas.content import DocumentPart
from schemas.envelope import Contract


def segment_id(document_key: str, revision: int, part: int, position: int) -> str:
    """Deterministic: a redelivered segment overwrites itself, and the indexer can name (and
    delete) every chunk of a revision from its part sizes alone."""
    return hashlib.sha256(f"{document_key}|{revision}|{part}|{position}".encode()).hexdigest()[:32]


class Segment(Contract):
    # Deterministic (document, revision, position): a redelivered segment overwrites itself.
    segment_id: str
    # The id an editor knows it by, the same in every revision (given segments); None: segment_id.
    stable_id: str | None = None
    enabled: bool = True  # False: indexed and listed, never returned by search
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


def _vector_from_wire(value: Any) -> Any:
    if isinstance(value, str):
        return np.frombuffer(base64.b64decode(value), dtype="<f4").tolist()
    return value


def _vector_to_wire(vector: list[float]) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()


# On the wire a vector is base64 of little-endian float32 (a fifth of its JSON-array size);
# in Python it is a list of floats. A JSON array of numbers is accepted too.
Vector = Annotated[
    list[float],
    BeforeValidator(_vector_from_wire),
    PlainSerializer(_vector_to_wire, return_type=str),
    WithJsonSchema({"type": "string", "contentEncoding": "base64", "description": "little-endian float32"}),
]


class EmbeddedSegment(Segment):
    # None for economy documents and parent segments, which are never matched by vector.
    vector: Vector | None = None


class SegmentBatch(DocumentPart):
    type: Literal["document.segments"] = "document.segments"
    segments: list[Segment]


class EmbeddedBatch(DocumentPart):
    type: Literal["document.embedded"] = "document.embedded"
    model: str | None = Field(default=None, description="None when nothing was embedded (economy)")
    dims: int | None = Field(default=None, ge=1)
    segments: list[EmbeddedSegment]
    # Vectors can make a part too big for one record: it then travels as several pieces.
    piece: int = Field(default=0, ge=0)
    pieces: int = Field(default=1, ge=1)
    first_position: int = Field(
        default=0, ge=0,
        description="Segments before this position are copies of parents whose children are in this piece",
    )

    @model_validator(mode="after")
    def _piece_in_range(self) -> EmbeddedBatch:
        if self.piece >= self.pieces:
            raise ValueError(f"piece {self.piece} out of range for {self.pieces} pieces")
        return self

    @property
    def own_segments(self) -> list[EmbeddedSegment]:
        """The segments this piece carries for itself (not parent copies)."""
        return [s for s in self.segments if s.position >= self.first_position]
