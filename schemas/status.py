"""The status and state topics: what each stage reports, and the projected state per document."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field

from schemas.envelope import ContentHash, Envelope


class DocumentStatus(StrEnum):
    # Names follow Dify's indexing status.
    WAITING = "waiting"
    PARSING = "parsing"
    SPLITTING = "splitting"
    INDEXING = "indexing"
    COMPLETED = "completed"
    ERROR = "error"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DELETED = "deleted"


# A revision that ended so is run again by an upsert of the same content (a retry, not a no-op).
RERUN_STATUSES = frozenset({DocumentStatus.ERROR, DocumentStatus.CANCELLED, DocumentStatus.DELETED})
TERMINAL_STATUSES = frozenset(
    {DocumentStatus.COMPLETED, DocumentStatus.ERROR, DocumentStatus.CANCELLED, DocumentStatus.DELETED}
)


class Stage(StrEnum):
    GATEWAY = "gateway"
    EXTRACTOR = "extractor"
    SPLITTER = "splitter"
    EMBEDDER = "embedder"
    INDEXER = "indexer"
    WATCHDOG = "watchdog"  # re-drives stuck documents and repairs the index (reconciler)
    PROJECTOR = "projector"  # folds the status topic into states; reports nothing itself


class StatusEvent(Envelope):
    """One stage's report about one document revision."""

    type: Literal["status"] = "status"
    status: DocumentStatus
    stage: Stage
    progress: float | None = Field(default=None, ge=0.0, le=1.0)
    name: str | None = None
    segment_count: int | None = Field(default=None, ge=0)
    token_count: int | None = Field(default=None, ge=0)
    word_count: int | None = Field(default=None, ge=0)
    attempts: int | None = Field(default=None, ge=0)
    error: str | None = None
    content_hash: ContentHash | None = None  # the revision's source, reported when it is accepted
    ocr_pages: int | None = Field(default=None, ge=0)
    ocr_seconds: float | None = Field(default=None, ge=0.0)


class DocumentState(Envelope):
    """The projector's view of one document: everything an ops dashboard shows."""

    type: Literal["document.state"] = "document.state"
    name: str | None = None
    content_hash: ContentHash | None = Field(default=None, description="SHA-256 of the revision's source")
    status: DocumentStatus
    stage: Stage
    progress: float = Field(default=0.0, ge=0.0, le=1.0)
    segment_count: int = 0
    token_count: int = 0
    word_count: int = Field(default=0, description="words of the revision's segments (of the parents, for "
                                                   "parent-child chunks): Dify's word_count")
    attempts: int = 0
    error: str | None = None
    error_stage: Stage | None = None
    ocr_pages: int = Field(default=0, description="pages of the revision read by OCR")
    ocr_seconds: float = Field(default=0.0, description="the time their OCR took, all pages together")
    # When each status was first entered for the current revision.
    transitions: dict[DocumentStatus, datetime] = Field(default_factory=dict)
    indexing_latency: float | None = Field(default=None, description="seconds from waiting to completed")
    searchable_revision: int | None = Field(
        default=None,
        description="the revision search serves: the newest completed one, until a newer revision "
        "completes (it takes over) or ends deleted, cancelled or in error (nothing is served)",
    )
    updated_at: datetime
