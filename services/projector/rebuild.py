"""Rebuild every document's state from the status topic alone, beside a running projector."""

from __future__ import annotations

import logging

from schemas import STATUS, MalformedRecord
from services.projector.state import apply
from services.projector.store import FoldedState, MergeReport, StateStore
from services.runtime.redis_client import redis_client
from services.runtime.replay import TopicReader
from services.runtime.settings import Settings
from topics.catalog import STATUS as STATUS_TOPIC

log = logging.getLogger(__name__)

# Each pass reads what the live projector may have folded during the previous one; it is normally
# a step behind the topic's end, so a second pass leaves nothing to catch up.
MAX_PASSES = 5


def fold(reader: TopicReader, folded: dict[str, FoldedState]) -> set[str]:
    """Fold the reader's next stretch of the topic into ``folded``, through the same reducer as the
    live projector; return the documents it changed. Records it cannot read are skipped (the live
    projector dead-letters them)."""
    changed = set()
    for message in reader.read():
        try:
            event = STATUS.decode(message.value())
        except MalformedRecord:
            continue
        previous = folded.get(event.key)
        state = apply(previous.state if previous else None, event)
        if state is not None:
            folded[event.key] = FoldedState(state, message.offset())
            changed.add(event.key)
    return changed


def fold_status_topic(settings: Settings) -> dict[str, FoldedState]:
    """Every document's state as the status topic says, up to the end it had when read."""
    folded: dict[str, FoldedState] = {}
    fold(TopicReader(settings, settings.topic(STATUS_TOPIC.name)), folded)
    return folded


def rebuild(settings: Settings) -> MergeReport:
    """Fold the topic to its current end and merge the states into the store. Where the live
    projector has meanwhile folded a later event (from a state it may have had to start afresh),
    read on to the topic's new end and merge again, so the state written is the whole history's."""
    store = StateStore(redis_client(settings), settings.keys)
    reader = TopicReader(settings, settings.topic(STATUS_TOPIC.name))
    folded: dict[str, FoldedState] = {}
    written, kept = 0, []
    for _ in range(MAX_PASSES):
        report = store.merge(folded[key] for key in sorted(fold(reader, folded) | set(kept)))
        written, kept = written + report.written, report.kept
        if not kept:
            break
        log.info("%d states were folded further by the live projector; reading on", len(kept))
    return MergeReport(written, kept)
