"""Which records are still worth processing, kept in the real Redis."""

from __future__ import annotations

import uuid

from schemas import DocumentDeleted
from services.runtime.redis_client import redis_client
from services.runtime.revisions import Revisions, Verdict
from services.runtime.settings import Settings


def event(revision: int, document_id: str = "doc") -> DocumentDeleted:
    return DocumentDeleted(tenant_id="t", dataset_id="d", document_id=document_id, revision=revision)


def test_older_revisions_become_stale(stack_settings: Settings):
    revisions = Revisions(redis_client(stack_settings), f"{uuid.uuid4().hex}.")
    assert revisions.check(event(2)) is Verdict.CURRENT
    assert revisions.check(event(3)) is Verdict.CURRENT
    assert revisions.check(event(2)) is Verdict.STALE
    assert revisions.check(event(3)) is Verdict.CURRENT  # a redelivery of the newest is still current
    assert revisions.check(event(1, "other")) is Verdict.CURRENT


def test_next_revision_is_above_anything_seen(stack_settings: Settings):
    revisions = Revisions(redis_client(stack_settings), f"{uuid.uuid4().hex}.")
    assert not revisions.known("t/doc")
    assert revisions.next_revision("t/doc") == 1
    revisions.check(event(7))  # published by another producer
    assert revisions.next_revision("t/doc") == 8
    assert revisions.known("t/doc")


def test_cancel_drops_and_pause_parks_until_resumed(stack_settings: Settings):
    revisions = Revisions(redis_client(stack_settings), f"{uuid.uuid4().hex}.")
    revisions.cancel(event(1, "c"))
    assert revisions.check(event(1, "c")) is Verdict.CANCELLED
    assert revisions.check(event(2, "c")) is Verdict.CURRENT, "a new revision is not cancelled"

    revisions.pause(event(1))
    assert revisions.check(event(1)) is Verdict.PAUSED
    revisions.park("t/doc", "segments", b"t/doc", b'{"n": 1}')
    revisions.park("t/doc", "embedded", None, b'{"n": 2}')
    assert revisions.resume(event(1)) == [("segments", b"t/doc", b'{"n": 1}'), ("embedded", None, b'{"n": 2}')]
    assert revisions.check(event(1)) is Verdict.CURRENT
    assert revisions.resume(event(1)) == []
