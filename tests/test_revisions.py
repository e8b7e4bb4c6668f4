"""Which records are still worth processing, kept in the real Redis."""

from __future__ import annotations

import time
import uuid

import pytest

from schemas import DocumentDeleted
from services.runtime.keys import RedisKeys
from services.runtime.redis_client import redis_client
from services.runtime.revisions import Revisions, RevisionsExhausted, Verdict
from services.runtime.settings import Settings


def event(revision: int, document_id: str = "doc") -> DocumentDeleted:
    return DocumentDeleted(tenant_id="t", dataset_id="d", document_id=document_id, revision=revision)


def fresh(settings: Settings) -> tuple[Revisions, RedisKeys]:
    keys = RedisKeys(f"{uuid.uuid4().hex}.")
    return Revisions(redis_client(settings), keys), keys


def test_older_revisions_become_stale(stack_settings: Settings):
    revisions, _ = fresh(stack_settings)
    assert revisions.check(event(2)) is Verdict.CURRENT
    assert revisions.check(event(3)) is Verdict.CURRENT
    assert revisions.check(event(2)) is Verdict.STALE
    assert revisions.check(event(3)) is Verdict.CURRENT  # a redelivery of the newest is still current
    assert revisions.check(event(1, "other")) is Verdict.CURRENT


def test_next_revision_is_above_anything_seen_and_survives_lost_state(stack_settings: Settings):
    revisions, keys = fresh(stack_settings)
    assert revisions.latest("t/doc") is None
    first = revisions.next_revision("t/doc")
    assert first >= int(time.time() * 1000) - 1000
    # Still growing, whether the clock moved meanwhile or not (an fsynced write can take a
    # millisecond or more; the case of a clock left behind is the one below).
    assert revisions.next_revision("t/doc") > first
    far = first + 10**9
    revisions.check(event(far))  # published by another producer
    assert revisions.next_revision("t/doc") == far + 1
    assert revisions.latest("t/doc") == far + 1

    # Redis restored from an old snapshot, or flushed: a re-created document must not get a
    # revision its old chunks already carry (the clock has moved on since they were issued).
    redis_client(stack_settings).delete(keys.revisions_issued("t"), keys.revisions_latest("t"))
    time.sleep(0.01)
    assert revisions.next_revision("t/doc") > first + 1


def test_close_drops_and_pause_parks_until_resumed(stack_settings: Settings):
    revisions, keys = fresh(stack_settings)
    revisions.close(event(1, "c"))
    assert revisions.check(event(1, "c")) is Verdict.CLOSED
    assert revisions.check(event(2, "c")) is Verdict.CURRENT, "a new revision is not closed"

    revisions.pause(event(1))
    assert revisions.check(event(1)) is Verdict.PAUSED
    assert revisions.park("t/doc", 1, "segments", b"t/doc", b'{"n": 1}')
    assert revisions.park("t/doc", 1, "embedded", None, b'{"n": 2}')
    parked = revisions.resume(event(1))
    assert parked == [("segments", b"t/doc", b'{"n": 1}'), ("embedded", None, b'{"n": 2}')]
    assert revisions.check(event(1)) is Verdict.CURRENT
    # Resumed between a stage's check and its park: the park is refused, the record goes on.
    assert not revisions.park("t/doc", 1, "segments", b"t/doc", b'{"n": 3}')
    # Until the re-published records are confirmed, they stay parked (a crash loses nothing).
    assert redis_client(stack_settings).llen(keys.parked("t/doc")) == 2
    revisions.forget_parked(event(1), len(parked))
    assert revisions.resume(event(1)) == []


def test_a_late_failure_of_an_older_revision_does_not_reopen_a_newer_closed_one(stack_settings: Settings):
    revisions, _ = fresh(stack_settings)
    revisions.check(event(5))
    revisions.close(event(5))  # revision 5 cancelled
    revisions.close(event(4))  # then a stage dead-letters a record of revision 4
    assert revisions.verdict("t/doc", 5) is Verdict.CLOSED


def test_the_largest_revision_the_contract_allows_is_kept_exactly(stack_settings: Settings):
    """2^53 - 1: a producer may use its own version numbers (epoch microseconds reach 1.7e15), and
    Redis's Lua scripts hold numbers as doubles, which print 14 digits unless told otherwise."""
    from schemas.envelope import MAX_REVISION

    revisions, keys = fresh(stack_settings)
    top = MAX_REVISION
    assert revisions.check(event(top - 1)) is Verdict.CURRENT
    assert revisions.check(event(top)) is Verdict.CURRENT
    assert revisions.check(event(top - 1)) is Verdict.STALE  # one apart, still told apart
    assert revisions.latest("t/doc") == top
    assert redis_client(stack_settings).hget(keys.revisions_latest("t"), "t/doc") == str(top).encode()
    revisions.close(event(top))
    assert revisions.check(event(top)) is Verdict.CLOSED

    revisions.check(event(top - 2, "near"))
    assert revisions.next_revision("t/near") == top - 1
    assert revisions.next_revision("t/near") == top
    assert redis_client(stack_settings).hget(keys.revisions_issued("t"), "t/near") == str(top).encode()
    with pytest.raises(RevisionsExhausted, match="largest"):
        revisions.next_revision("t/near")  # refused, never 2^53 (which Lua and JavaScript cannot tell from 2^53 + 1)
    assert revisions.latest("t/near") == top
