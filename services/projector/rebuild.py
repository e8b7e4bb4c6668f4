"""Rebuild every document's state from the status topic alone."""

from __future__ import annotations

import logging

from schemas import STATUS, DocumentState, MalformedRecord
from services.projector.state import apply
from services.projector.store import StateStore
from services.runtime.redis_client import redis_client
from services.runtime.replay import replay
from services.runtime.settings import Settings
from topics.catalog import STATUS as STATUS_TOPIC

log = logging.getLogger(__name__)


def rebuild(settings: Settings) -> int:
    """Replay the status topic through the same reducer as the live projector; returns the number
    of documents. Records it cannot read are skipped (the live projector dead-letters them)."""
    states: dict[str, DocumentState] = {}
    for message in replay(settings, settings.topic(STATUS_TOPIC.name)):
        try:
            event = STATUS.decode(message.value())
        except MalformedRecord:
            continue
        state = apply(states.get(event.key), event)
        if state is not None:
            states[event.key] = state
    return StateStore(redis_client(settings), settings.keys).replace_all(states.values())
