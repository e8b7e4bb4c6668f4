"""How a status event changes a document's state. Pure and deterministic, so replaying the status
topic from the start rebuilds exactly the same states."""

from __future__ import annotations

from schemas import TERMINAL_STATUSES, DocumentState, DocumentStatus, StatusEvent

# The forward path of one revision; an event further back on it is a late duplicate.
_RANK = {
    DocumentStatus.WAITING: 0,
    DocumentStatus.PARSING: 1,
    DocumentStatus.SPLITTING: 2,
    DocumentStatus.INDEXING: 3,
    DocumentStatus.COMPLETED: 4,
}


def _accepts(state: DocumentState, event: StatusEvent) -> bool:
    if event.status is DocumentStatus.DELETED:
        return True
    if state.status is DocumentStatus.DELETED:
        return False
    if state.status is DocumentStatus.PAUSED:
        return True  # resumed, or cancelled, while paused
    if state.status in TERMINAL_STATUSES:
        # Only a retry (a new attempt) reopens a finished revision.
        return event.status is DocumentStatus.PARSING and (event.attempts or 0) > state.attempts
    if event.status in _RANK and state.status in _RANK:
        return _RANK[event.status] >= _RANK[state.status]
    return True


def apply(state: DocumentState | None, event: StatusEvent) -> DocumentState | None:
    """The new state, or None when the event changes nothing (stale or out of order)."""
    if state is not None and event.revision < state.revision:
        return None
    fresh = state is None or event.revision > state.revision
    if not fresh and not _accepts(state, event):
        return None
    base = {} if fresh else state.model_dump(exclude={"event_id", "produced_at"})
    retry = not fresh and state.status in TERMINAL_STATUSES and event.status is DocumentStatus.PARSING
    transitions = {} if fresh or retry else dict(base["transitions"])
    transitions.setdefault(event.status, event.produced_at)
    update = {
        **base,
        **event.identity(),
        "name": event.name or (state.name if state else None),
        # Only the revision's own hash: a revision accepted without one (a producer's) has unknown content.
        "content_hash": event.content_hash or (None if fresh else state.content_hash),
        "status": event.status,
        "stage": event.stage,
        "transitions": transitions,
        "attempts": max(base.get("attempts", 0), event.attempts or 0),
        "updated_at": event.produced_at,
    }
    if event.progress is not None:
        update["progress"] = event.progress
    if event.segment_count is not None:
        update["segment_count"] = event.segment_count
    if event.token_count is not None:
        update["token_count"] = event.token_count
    if event.word_count is not None:
        update["word_count"] = event.word_count
    if event.ocr_pages is not None:
        update["ocr_pages"], update["ocr_seconds"] = event.ocr_pages, event.ocr_seconds or 0.0
    elif retry:
        update["ocr_pages"], update["ocr_seconds"] = 0, 0.0  # reported again by the new attempt
    if event.status is DocumentStatus.ERROR:
        update["error"], update["error_stage"] = event.error, event.stage
    elif fresh or retry:
        update["error"], update["error_stage"] = None, None
    if fresh and state is not None:
        update["searchable_revision"] = state.searchable_revision  # served until the new one completes
    if event.status is DocumentStatus.COMPLETED:
        update["searchable_revision"] = event.revision
    elif event.status in (DocumentStatus.ERROR, DocumentStatus.CANCELLED, DocumentStatus.DELETED):
        update["searchable_revision"] = None
    if event.status is DocumentStatus.COMPLETED:
        started = transitions.get(DocumentStatus.WAITING) or min(transitions.values())
        update["indexing_latency"] = round((event.produced_at - started).total_seconds(), 3)
    elif fresh or retry:
        update["indexing_latency"] = None
    return DocumentState(**update)
