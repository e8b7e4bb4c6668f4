"""The stall sweep judges the documents in flight for longer than the stall time, not every
document there is: a document finished at its registered revision leaves the sweep's set (the
projector takes it out as it writes the final state; the sweep, one it finds finished), one
registered again (an update, a re-drive) enters it again, one registered within the stall time is
not read yet, and a deployment's registry from before the set is read into it once."""

from __future__ import annotations

from datetime import timedelta

from schemas import DocumentStatus, DocumentUpserted, InlineSource, Stage, StatusEvent
from services.runtime.redis_client import redis_client
from services.runtime.settings import Settings
from services.watchdog.service import build
from services.watchdog.settings import WatchdogSettings


def upsert(document: str, revision: int = 1) -> DocumentUpserted:
    return DocumentUpserted(tenant_id="sweep", dataset_id="ds", document_id=document, revision=revision,
                            name=f"{document}.txt", source=InlineSource(text="text"))


def state(document: str, status: DocumentStatus, revision: int = 1) -> StatusEvent:
    return StatusEvent(tenant_id="sweep", dataset_id="ds", document_id=document, revision=revision, status=status,
                       stage=Stage.INDEXER, segment_count=1, word_count=3, progress=1.0)


def test_a_sweep_reads_only_documents_in_flight_for_longer_than_the_stall_time(pipeline_topics: Settings):
    watchdog = build(pipeline_topics, WatchdogSettings(stall_seconds=3_600))
    sweep, store = watchdog.sweep, watchdog.sweep.states
    store.index_stored()
    documents = [upsert(f"doc-{n}") for n in range(120)]
    sweep.registry.remember_many(documents)
    for offset, document in enumerate(documents):  # doc-7 paused: in flight, never judged stuck
        status = DocumentStatus.PAUSED if document.document_id == "doc-7" else DocumentStatus.COMPLETED
        store.fold(state(document.document_id, status), offset)
    unfinished = pipeline_topics.keys.unfinished("sweep")
    # The projector takes a document out as it writes its final state: the sweep has no finished
    # ones to read at all.
    assert redis_client(pipeline_topics).zrange(unfinished, 0, -1) == [b"sweep/doc-7"]
    soon, later = documents[0].produced_at + timedelta(seconds=5), documents[0].produced_at + timedelta(hours=2)

    assert sweep.sweep(soon).checked == 0  # registered within the stall time: not read yet
    first = sweep.sweep(later)
    assert first.checked == 1 and first.statuses == {"completed": 119, "paused": 1}
    assert sweep.sweep(later).checked == 1  # the 119 finished ones are not read again

    sweep.registry.remember(upsert("doc-3", revision=2))  # updated: in flight again, until finished
    assert redis_client(pipeline_topics).zscore(unfinished, "sweep/doc-3") is not None
    store.fold(state("doc-3", DocumentStatus.COMPLETED, revision=2), 500)
    assert redis_client(pipeline_topics).zrange(unfinished, 0, -1) == [b"sweep/doc-7"]
    assert sweep.sweep(later).checked == 1

    # A registry from before the set: every document is judged once more, then only those in flight.
    keys = pipeline_topics.keys
    redis_client(pipeline_topics).delete(keys.unfinished("sweep"), keys.unfinished_complete)
    assert sweep.sweep(soon).checked == 1
    assert redis_client(pipeline_topics).zcard(pipeline_topics.keys.unfinished("sweep")) == 1
    watchdog.close()
