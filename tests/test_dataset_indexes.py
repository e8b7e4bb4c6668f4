"""A dataset's figures (its documents by status, its words) and its documents' order (newest
first, by position) are kept as states are written, in the same script, so reading them never
reads the dataset's documents. Both must equal what the states say after anything the projector
meets: events redelivered, a document's revisions, deletes, a move to another dataset, positions
given before or after a document's first state, documents disabled, archived and enabled again, a
rebuild writing states again, the dataset deleted, and states written before these were kept,
indexed once while the live projector writes. A listing by Dify's display status is a page of its
own sorted set too."""

from __future__ import annotations

import threading

from schemas import DocumentStatus, Stage, StatusEvent
from services.gateway.datasets import DatasetCatalog, DatasetRecord
from services.gateway.dify import DISPLAY_STATUSES, display_status
from services.gateway.visibility import DocumentVisibility
from services.projector.listing import LISTED
from services.projector.store import DatasetFigures, FoldedState, StateStore
from services.runtime.redis_client import redis_client
from services.runtime.settings import Settings


def event(document: str, status: DocumentStatus, revision: int = 1, dataset: str = "ds", **fields) -> StatusEvent:
    stage = Stage.INDEXER if status is DocumentStatus.COMPLETED else Stage.GATEWAY
    return StatusEvent(document_id=document, tenant_id="acme", dataset_id=dataset, revision=revision, attempt=1,
                       status=status, stage=stage, **fields)


def read_from_states(store: StateStore, *datasets: str) -> dict[str, DatasetFigures]:
    return {dataset: DatasetFigures.of(store.dataset("acme", dataset)) for dataset in datasets}


def sorted_from_states(store: StateStore, catalog: DatasetCatalog, dataset: str, deleted: bool,
                       shown: str | None = None) -> list[str]:
    """The listing's order as it is computed from every state: position, then id, newest first
    (those Dify displays as ``shown``, when given)."""
    positions = catalog.positions("acme", dataset)
    states = [s for s in store.dataset("acme", dataset) if deleted or s.status is not DocumentStatus.DELETED]
    if shown is not None:
        visibility = DocumentVisibility(catalog._redis, catalog._keys, store).of(
            "acme", [s.document_id for s in states])
        states = [s for s in states if display_status(s.status, visibility[s.document_id]) == shown]
    return [s.document_id for s in sorted(states, key=lambda s: (positions.get(s.document_id, 0), s.document_id),
                                          reverse=True)]


def assert_orders_match(store: StateStore, catalog: DatasetCatalog, dataset: str) -> None:
    for deleted in (False, True):
        for shown in (None, *sorted(DISPLAY_STATUSES)):
            expected = sorted_from_states(store, catalog, dataset, deleted, shown)
            page, total = store.newest_first("acme", dataset, 0, 10_000, deleted=deleted, shown=shown)
            assert ([s.document_id for s in page], total) == (expected, len(expected)), (deleted, shown)
            second, _ = store.newest_first("acme", dataset, 2, 2, deleted=deleted, shown=shown)
            assert [s.document_id for s in second] == expected[2:4], (deleted, shown)


def test_figures_and_order_follow_the_states_through_redeliveries_revisions_deletes_and_moves(settings: Settings):
    client = redis_client(settings)
    store, catalog = StateStore(client, settings.keys), DatasetCatalog(client, settings.keys)
    assert store.index_stored() == 0  # nothing written before: complete at once
    offsets = iter(range(1, 1_000))
    fold = lambda e: store.fold(e, next(offsets))  # noqa: E731

    catalog.position("acme", "ds", "a")  # the gateway gave a its position before its first state
    fold(event("a", DocumentStatus.WAITING, name="a.txt"))
    done_a = event("a", DocumentStatus.COMPLETED, segment_count=2, word_count=12, progress=1.0)
    position = next(offsets)
    store.fold(done_a, position)
    store.fold(done_a, position)  # redelivered after a crash
    fold(event("a", DocumentStatus.WAITING, name="a.txt"))  # an older report, late
    fold(event("b", DocumentStatus.WAITING, name="b.txt"))
    fold(event("b", DocumentStatus.ERROR, error="corrupt"))
    catalog.position("acme", "ds", "b")  # b's first state came before its position
    fold(event("c", DocumentStatus.COMPLETED, segment_count=1, word_count=5, progress=1.0))
    fold(event("c", DocumentStatus.DELETED, revision=2))
    fold(event("d", DocumentStatus.COMPLETED, segment_count=1, word_count=7, progress=1.0))
    fold(event("d", DocumentStatus.WAITING, revision=2, dataset="other", name="d.txt"))  # moved
    for name in ("e", "f", "g"):  # never given positions (a producer on Kafka): 0, then by id
        fold(event(name, DocumentStatus.WAITING, name=f"{name}.txt"))

    figures = store.dataset_figures("acme", ["ds", "other", "empty"])
    assert figures == read_from_states(store, "ds", "other", "empty")
    assert figures["ds"] == DatasetFigures({"completed": 1, "error": 1, "deleted": 1, "waiting": 3}, words=12)
    assert figures["ds"].live == 5
    assert figures["other"] == DatasetFigures({"waiting": 1}, words=0)
    assert figures["empty"] == DatasetFigures({}, words=0)
    assert_orders_match(store, catalog, "ds")
    assert [s.document_id for s in store.newest_first("acme", "ds", 0, 10)[0]] == ["b", "a", "g", "f", "e"]
    assert_orders_match(store, catalog, "other")

    # Disabled, archived, enabled again; a disabled document indexed again is displayed disabled
    # once completed, as before.
    visibility = DocumentVisibility(client, settings.keys, store)
    fold(event("h", DocumentStatus.COMPLETED, segment_count=1, word_count=3, progress=1.0))
    fold(event("i", DocumentStatus.COMPLETED, segment_count=1, word_count=4, progress=1.0))
    catalog.position("acme", "ds", "i")
    visibility.apply("acme", "ds", "a", "disable")
    visibility.apply("acme", "ds", "h", "archive")
    visibility.apply("acme", "ds", "i", "disable")
    visibility.apply("acme", "ds", "i", "archive")
    assert_orders_match(store, catalog, "ds")
    assert [s.document_id for s in store.newest_first("acme", "ds", 0, 10, shown="archived")[0]] == ["i", "h"]
    fold(event("a", DocumentStatus.WAITING, revision=3, name="a.txt"))
    assert_orders_match(store, catalog, "ds")
    fold(event("a", DocumentStatus.COMPLETED, revision=3, segment_count=2, word_count=12, progress=1.0))
    visibility.apply("acme", "ds", "i", "un_archive")
    assert [s.document_id for s in store.newest_first("acme", "ds", 0, 10, shown="disabled")[0]] == ["i", "a"]
    visibility.apply("acme", "ds", "i", "enable")
    assert_orders_match(store, catalog, "ds")

    # A rebuild writes every state again, from later offsets: nothing is counted or placed twice.
    keys = [f"acme/{name}" for name in "abcdefghi"]
    report = store.merge(FoldedState(state, 10_000 + n) for n, state in enumerate(store.get_many(keys)))
    assert report.written == 9
    assert store.dataset_figures("acme", ["ds", "other"]) == read_from_states(store, "ds", "other")
    assert_orders_match(store, catalog, "ds")

    # The dataset deleted: its documents have no positions any more, in its order too.
    catalog.delete("acme", DatasetRecord(id="ds", name="ds", implicit=True))
    assert_orders_match(store, catalog, "ds")


def test_states_written_before_the_indexes_were_kept_are_indexed_once_beside_live_writes(settings: Settings):
    client = redis_client(settings)
    store, catalog = StateStore(client, settings.keys), DatasetCatalog(client, settings.keys)
    for n in range(1_200):
        if n % 2:
            catalog.position("acme", "ds", f"old-{n}")
        store.fold(event(f"old-{n}", DocumentStatus.COMPLETED, segment_count=1, word_count=n % 7, progress=1.0), n)
        if n % 5 == 0:
            DocumentVisibility(client, settings.keys, store).apply("acme", "ds", f"old-{n}", "disable")
    # As a deployment from before them has it: states and a set of keys per dataset (or counts
    # without the display statuses' sorted sets, as one from before those had it: placed all the same).
    client.sadd(settings.keys.dataset_keys_before("acme", "ds"), *(f"acme/old-{n}" for n in range(1_200)))
    client.delete(settings.keys.dataset_counts("acme"), settings.keys.dataset_indexes_complete,
                  settings.keys.dataset_live_documents("acme", "ds"),
                  *(settings.keys.dataset_listed_documents("acme", "ds", listed) for listed in LISTED))
    offsets = settings.keys.state_positions("acme")
    client.hset(offsets, mapping={key: value.partition(b"|")[0] for key, value in client.hgetall(offsets).items()})
    store = StateStore(client, settings.keys)
    assert store.dataset_figures("acme", ["ds"]) == read_from_states(store, "ds")  # read from the states meanwhile

    def live_writes() -> None:  # the projector goes on: deletes some, adds others, moves some
        for n in range(0, 1_200, 3):
            store.fold(event(f"old-{n}", DocumentStatus.DELETED, revision=2), 5_000 + n)
            store.fold(event(f"new-{n}", DocumentStatus.WAITING, name="n.txt"), 10_000 + n)
        for n in range(1, 1_200, 50):
            store.fold(event(f"old-{n}", DocumentStatus.WAITING, revision=3, dataset="other", name="m.txt"), 20_000 + n)

    writer = threading.Thread(target=live_writes)
    writer.start()
    indexed = StateStore(client, settings.keys).index_stored(page=100)
    writer.join()
    assert 0 < indexed <= 1_600  # the 400 new ones too, if written before the scan reached them
    assert client.exists(settings.keys.dataset_indexes_complete)
    assert not client.exists(settings.keys.dataset_keys_before("acme", "ds"))  # read no more: gone
    figures = store.dataset_figures("acme", ["ds", "other"])
    assert figures == read_from_states(store, "ds", "other")
    # 400 deleted, of which 8 then moved on; 400 new; 24 moved to the other dataset
    assert figures["ds"].statuses["deleted"] == 392 and figures["ds"].statuses["waiting"] == 400
    assert figures["other"] == DatasetFigures({"waiting": 24}, words=0)
    assert_orders_match(store, catalog, "ds")
    assert_orders_match(store, catalog, "other")
    assert store.index_stored() == 0  # once complete, never again


def test_counted_sides_kept_with_the_tenant_in_them_are_taken_away_once(settings: Settings):
    """What a state counts is kept without its tenant (the field's key names it); one kept with it
    ("offset|tenant/dataset|status|words", as before) is taken away as it is next written, not twice."""
    client = redis_client(settings)
    store, catalog = StateStore(client, settings.keys), DatasetCatalog(client, settings.keys)
    assert store.index_stored() == 0
    for n in range(6):
        store.fold(event(f"d{n}", DocumentStatus.COMPLETED, segment_count=1, word_count=10, progress=1.0), n)
    positions = settings.keys.state_positions("acme")
    stored = client.hgetall(positions)
    assert all(b"acme/" not in value for value in stored.values())  # none kept with the tenant
    client.hset(positions, mapping={key: value.replace(b"|ds|", b"|acme/ds|") for key, value in stored.items()})
    # Written again: one deleted, one moved, one disabled.
    store.fold(event("d0", DocumentStatus.DELETED, revision=2), 10)
    store.fold(event("d1", DocumentStatus.WAITING, revision=2, dataset="other", name="d1.txt"), 20)
    DocumentVisibility(client, settings.keys, store).apply("acme", "ds", "d2", "disable")
    figures = store.dataset_figures("acme", ["ds", "other"])
    assert figures == read_from_states(store, "ds", "other")
    assert figures["ds"] == DatasetFigures({"completed": 4, "deleted": 1}, words=40)
    assert_orders_match(store, catalog, "ds")
    assert [s.document_id for s in store.newest_first("acme", "ds", 0, 10, shown="disabled")[0]] == ["d2"]
