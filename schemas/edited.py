"""A document given as its segments, as an editor left them (Dify's segment API): the body of an
upsert whose ``mime_type`` is ``SEGMENT_LIST_MIME``. Indexed as they are, never re-split; each
segment and child keeps its id across revisions."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from schemas.envelope import Contract

SEGMENT_LIST_MIME = "application/vnd.indexflow.segments+json"
SegmentText = Annotated[str, StringConstraints(min_length=1, max_length=100_000, pattern=r"\S")]  # not blank


class GivenChild(Contract):
    id: str = Field(min_length=1, max_length=64)
    content: SegmentText


class GivenSegment(Contract):
    id: str = Field(min_length=1, max_length=64)
    content: SegmentText
    enabled: bool = Field(default=True, description="False: listed, never returned by search")
    page: int | None = Field(default=None, ge=1)
    children: list[GivenChild] = Field(default_factory=list, description="Hierarchical documents: what search matches")


class SegmentList(Contract):
    title: str | None = Field(default=None, max_length=512)
    segments: list[GivenSegment]
