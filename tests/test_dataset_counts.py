"""A dataset's figures (its documents by status, its words) are counted as states are written, in
the same script, so reading them never reads the dataset's documents. The counts must equal what
the states say after anything the projector meets: events redelivered, a document's revisions,
deletes, a move to another dataset, a rebuild writing states again, and states written before
the counts were kept, counted once while the live projector writes."""

from __future__ import annotations

import threading

from schemas import DocumentStatus, Stage, StatusEvent
from services.projector.store import DatasetFigures, FoldedState, StateStore
from services.runtime.redis_client import redis_client
from services.runtime.settings import Settings


def event(document: str, status: DocumentStatus, revision: int = 1, dataset: str = "ds", **fields) -> StatusEvent:
    stage = Stage.INDEXER if status is DocumentStatus.COMPLETED else Stage.GATEWAY
    return StatusEvent(document_id=document, tenant_id="acme", dataset_id=dataset, revision=revision, attempt=1,
                       status=status, stage=stage, **fields)


def read_from_states(store: StateStore, *datasets: str) -> dict[str, DatasetFigures]:
    return {dataset: DatasetFigures.of(store.dataset("acme", dataset)) for dataset in datasets}


def test_counts_follow_the_states_through_redeliveries_revisions_deletes_moves_and_rebuilds(settings: Settings):
    store = StateStore(redis_client(settings), settings.keys)
    assert store.count_stored() == 0  # nothing written before: complete at once
    offsets = iter(range(1, 1_000))
    fold = lambda e: store.fold(e, next(offsets))  # noqa: E731

    fold(event("a", DocumentStatus.WAITING, name="a.txt"))
    done_a = event("a", DocumentStatus.COMPLETED, segment_count=2, word_count=12, progress=1.0)
    position = next(offsets)
    store.fold(done_a, position)
    store.fold(done_a, position)  # redelivered after a crash
    fold(event("a", DocumentStatus.WAITING, name="a.txt"))  # an older report, late
    fold(event("b", DocumentStatus.WAITING, name="b.txt"))
    fold(event("b", DocumentStatus.ERROR, error="corrupt"))
    fold(event("c", DocumentStatus.COMPLETED, segment_count=1, word_count=5, progress=1.0))
    fold(event("c", DocumentStatus.DELETED, revision=2))
    fold(event("d", DocumentStatus.COMPLETED, segment_count=1, word_count=7, progress=1.0))
    fold(event("d", DocumentStatus.WAITING, revision=2, dataset="other", name="d.txt"))  # moved

    figures = store.dataset_figures("acme", ["ds", "other", "empty"])
    assert figures == read_from_states(store, "ds", "other", "empty")
    assert figures["ds"] == DatasetFigures({"completed": 1, "error": 1, "deleted": 1}, words=12)
    assert figures["ds"].live == 2
    assert figures["other"] == DatasetFigures({"waiting": 1}, words=0)
    assert figures["empty"] == DatasetFigures({}, words=0)

    # A rebuild writes every state again, from later offsets: nothing is counted twice.
    report = store.merge(FoldedState(state, 10_000 + n)
                         for n, state in enumerate(store.get_many(["acme/a", "acme/b", "acme/c", "acme/d"])))
    assert report.written == 4
    assert store.dataset_figures("acme", ["ds", "other"]) == read_from_states(store, "ds", "other")


def test_states_written_before_the_counts_were_kept_are_counted_once_beside_live_writes(settings: Settings):
    client = redis_client(settings)
    store = StateStore(client, settings.keys)
    for n in range(1_200):
        store.fold(event(f"old-{n}", DocumentStatus.COMPLETED, segment_count=1, word_count=n % 7, progress=1.0), n)
    # As a deployment from before the counts has them: states only.
    client.delete(settings.keys.dataset_counts, settings.keys.state_counted, settings.keys.dataset_counts_complete)
    assert store.dataset_figures("acme", ["ds"]) == read_from_states(store, "ds")  # read from the states meanwhile

    def live_writes() -> None:  # the projector goes on: deletes some, adds others
        for n in range(0, 1_200, 3):
            store.fold(event(f"old-{n}", DocumentStatus.DELETED, revision=2), 5_000 + n)
            store.fold(event(f"new-{n}", DocumentStatus.WAITING, name="n.txt"), 10_000 + n)

    writer = threading.Thread(target=live_writes)
    writer.start()
    counted = store.count_stored(page=100)
    writer.join()
    assert 0 < counted <= 1_200 + 400
    assert client.exists(settings.keys.dataset_counts_complete)
    figures = store.dataset_figures("acme", ["ds"])["ds"]
    assert figures == read_from_states(store, "ds")["ds"]
    assert figures.statuses["deleted"] == 400 and figures.statuses["waiting"] == 400
    assert store.count_stored() == 0  # once complete, never again
