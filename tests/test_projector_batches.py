"""The projector folds a batch's events together (each document's state read once and written
once): what it stores, counts and lists must be what folding them one at a time gives, whatever
the batch holds (redeliveries, late reports, a document's revisions, a delete, a move to another
dataset), and a state another projector writes meanwhile must not be overwritten."""

from __future__ import annotations

import time
import uuid

import orjson

from schemas import DocumentStatus, Stage, StatusEvent
from services.projector.store import StateStore
from services.runtime.keys import RedisKeys
from services.runtime.redis_client import redis_client
from services.runtime.settings import Settings


def event(document: str, status: DocumentStatus, revision: int = 1, dataset: str = "ds", **fields) -> StatusEvent:
    return StatusEvent(document_id=document, tenant_id="acme", dataset_id=dataset, revision=revision, attempt=1,
                       status=status, stage=Stage.INDEXER, **fields)


def batch() -> list[tuple[StatusEvent, int]]:
    events = [
        event("a", DocumentStatus.WAITING, name="a.txt"), event("a", DocumentStatus.PARSING),
        event("a", DocumentStatus.COMPLETED, segment_count=1, word_count=9, progress=1.0),
        event("a", DocumentStatus.PARSING),  # late, folds nothing
        event("b", DocumentStatus.WAITING, name="b.txt"), event("b", DocumentStatus.ERROR, error="corrupt"),
        event("c", DocumentStatus.COMPLETED, segment_count=1, word_count=4, progress=1.0),
        event("c", DocumentStatus.DELETED, revision=2),
        event("d", DocumentStatus.COMPLETED, segment_count=1, word_count=7, progress=1.0),
        event("d", DocumentStatus.WAITING, revision=2, dataset="other", name="d.txt"),  # moved
        event("e", DocumentStatus.WAITING, revision=3, name="e.txt"),
        event("e", DocumentStatus.WAITING, revision=2, name="e.txt"),  # an older revision, late
    ]
    return [(e, offset) for offset, e in enumerate(events, start=10)]


def made(answers: dict) -> dict:
    return {event: (state.status.value, state.revision) if state else None for event, state in answers.items()}


def stores(settings: Settings) -> tuple[StateStore, StateStore]:
    client = redis_client(settings)
    made = (StateStore(client, settings.keys),
            StateStore(client, RedisKeys(f"{settings.keys.namespace}-one-by-one-{uuid.uuid4().hex[:6]}")))
    for store in made:
        store.index_stored()  # as a projector does first: nothing yet, so complete at once
    return made


def test_a_batch_folded_together_stores_counts_and_lists_what_folding_one_by_one_does(settings: Settings):
    together, one_by_one = stores(settings)
    known = event("a", DocumentStatus.WAITING, name="a.txt")  # before the batch
    one_by_one.fold(known, 1)
    together.fold(known, 1)
    events = batch()
    channel = redis_client(settings).pubsub(ignore_subscribe_messages=True)
    channel.subscribe(settings.keys.state_changes("acme"))
    announced = together.fold_many(events)
    one_at_a_time = {(e.key, offset): one_by_one.fold(e, offset) for e, offset in events}

    keys = [f"acme/{name}" for name in "abcde"]
    made_anew = {"event_id", "produced_at"}  # each state written is a new record
    assert [s.model_dump(exclude=made_anew) for s in together.get_many(keys)] == \
        [s.model_dump(exclude=made_anew) for s in one_by_one.get_many(keys)]
    assert together.dataset_figures("acme", ["ds", "other"]) == one_by_one.dataset_figures("acme", ["ds", "other"])
    for deleted in (False, True):
        assert [s.document_id for s in together.newest_first("acme", "ds", 0, 10, deleted=deleted)[0]] == \
            [s.document_id for s in one_by_one.newest_first("acme", "ds", 0, 10, deleted=deleted)[0]]
    # Each event announces the state it made, as folding it alone does (None: it made nothing), and
    # a live dashboard sees every one of them, in order.
    assert made(announced) == made(one_at_a_time)
    last = {key for (key, _), state in announced.items() if state is not None}
    assert sorted(last) == keys
    published, deadline = [], time.monotonic() + 2
    while time.monotonic() < deadline:
        if (message := channel.get_message(timeout=0.1)) is not None:
            published.append(orjson.loads(message["data"]))
    assert [(s["document_id"], s["status"]) for s in published] == \
        [(state.document_id, state.status.value) for state in announced.values() if state is not None]

    # The batch delivered again (a crash before its commit): nothing changes, and the events that
    # made the stored states announce them again.
    again = together.fold_many(events)
    assert {key for (key, _), state in again.items() if state is not None} == last
    assert together.dataset_figures("acme", ["ds", "other"]) == one_by_one.dataset_figures("acme", ["ds", "other"])


def test_a_state_written_meanwhile_by_another_projector_is_folded_onto_not_overwritten(settings: Settings):
    store, _ = stores(settings)
    store.fold(event("a", DocumentStatus.WAITING, name="a.txt"), 1)
    other = StateStore(redis_client(settings), settings.keys)
    saving = store._save_many

    def raced(saves):  # between the batch's read and its write, another projector folds a's error
        other.fold(event("a", DocumentStatus.ERROR, revision=2, error="from elsewhere"), 50)
        return saving(saves)

    store._save_many = raced
    store.fold_many([(event("a", DocumentStatus.PARSING), 20), (event("a", DocumentStatus.SPLITTING), 21)])
    state = store.get("acme/a")
    assert (state.revision, state.status.value, state.error) == (2, "error", "from elsewhere")
    assert store.dataset_figures("acme", ["ds"])["ds"].statuses == {"error": 1}


def test_what_a_state_counted_as_kept_before_is_taken_away_as_the_state_is_written_again(settings: Settings):
    """A deployment's states from before their offsets and counted sides shared a field: the offset
    alone, the counted side in state-counted. The next write takes that side away, not twice."""
    store, _ = stores(settings)
    client, keys = redis_client(settings), settings.keys
    store.fold(event("k", DocumentStatus.COMPLETED, segment_count=1, word_count=5, progress=1.0), 1)
    offset, _, counted = client.hget(keys.state_positions("acme"), "acme/k").partition(b"|")
    client.hset(keys.state_positions("acme"), "acme/k", offset)
    client.hset(keys.state_counted("acme"), "acme/k", b"acme/" + counted)  # with its tenant, as then
    assert store.dataset_figures("acme", ["ds"])["ds"].statuses == {"completed": 1}

    store.fold(event("k", DocumentStatus.DELETED, revision=2), 2)
    figures = store.dataset_figures("acme", ["ds"])["ds"]
    assert figures.statuses == {"deleted": 1} and figures.words == 0
    assert client.hget(keys.state_positions("acme"), "acme/k") == b"2|ds|deleted|0"
    assert not client.hexists(keys.state_counted("acme"), "acme/k")
