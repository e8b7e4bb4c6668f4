"""The record that follows a document's content down extracted -> segments -> embedded when a
revision is deleted, cancelled or failed, so every stage (the indexer last) reads one ordered
stream per document and never needs two topics' partitions to line up."""

from __future__ import annotations

from typing import Literal

from schemas.envelope import Envelope


class DocumentRetracted(Envelope):
    """No chunk of this document at or below ``revision`` may stay searchable."""

    type: Literal["document.retracted"] = "document.retracted"
    reason: Literal["deleted", "cancelled", "failed"]
