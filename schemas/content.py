"""The extracted topic: text pulled out of one document, a page range per record."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from schemas.documents import IndexingSpec, Metadata
from schemas.edited import GivenSegment
from schemas.envelope import Contract, Envelope


class DocumentPart(Envelope):
    """A record carrying one part of a document. Big documents travel as several parts, so each
    record stays far below Kafka's size limit; a stage knows a revision is whole when all
    ``parts`` have passed."""

    name: str
    # The document's title (its metadata's, or a title line its text starts with), searched beside its text.
    title: str | None = Field(default=None, max_length=512)
    # The document's metadata (its own, and what extraction found), stored with every chunk to filter by.
    metadata: Metadata = Field(default_factory=dict)
    indexing: IndexingSpec
    part: int = Field(ge=0)
    parts: int = Field(ge=1)

    def part_of(self) -> dict:
        """The fields that say which part of which document revision this is, for the next stage's record."""
        return {
            **self.identity(), "name": self.name, "title": self.title, "metadata": self.metadata,
            "indexing": self.indexing, "part": self.part, "parts": self.parts,
        }

    @model_validator(mode="after")
    def _part_in_range(self) -> DocumentPart:
        if self.part >= self.parts:
            raise ValueError(f"part {self.part} out of range for {self.parts} parts")
        return self


class Page(Contract):
    number: int | None = Field(default=None, ge=1, description="1-based; None for formats without pages")
    text: str


class ExtractedContent(DocumentPart):
    type: Literal["document.extracted"] = "document.extracted"
    mime_type: str | None = None
    pages: list[Page]
    # A document given as its segments: these are taken as they are, instead of splitting pages.
    segments: list[GivenSegment] | None = None
