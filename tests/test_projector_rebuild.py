"""Rebuilding states from the status topic: it reads to the end the topic had when it began (even
while stages keep reporting), and it never overwrites what the live projector folded later."""

from __future__ import annotations

import threading
import time

from schemas import DocumentStatus, Stage, StatusEvent
from services.projector.rebuild import fold_status_topic, rebuild
from services.projector.store import StateStore
from services.runtime.producer import Producer
from services.runtime.redis_client import redis_client
from services.runtime.replay import TopicReader
from services.runtime.settings import Settings
from topics.catalog import STATUS


def event(document: str, status: DocumentStatus, revision: int = 1, **fields) -> StatusEvent:
    stage = Stage.INDEXER if status is DocumentStatus.COMPLETED else Stage.GATEWAY
    return StatusEvent(
        document_id=document, tenant_id="default", dataset_id="ds", revision=revision, attempt=1,
        status=status, stage=stage, **fields,
    )


def publish(settings: Settings, *events: StatusEvent) -> None:
    producer = Producer(settings)
    for e in events:
        producer.publish(STATUS, e)
    producer.flush()


def test_a_rebuild_ends_at_the_topic_end_it_found_while_reports_keep_coming(pipeline_topics: Settings):
    settings = pipeline_topics
    publish(settings, *(event(f"doc-{n}", DocumentStatus.WAITING, name=f"{n}.txt") for n in range(20)))
    stop = threading.Event()

    def keep_reporting() -> None:
        producer, revision = Producer(settings), 1
        while not stop.is_set():
            producer.publish(STATUS, event("busy", DocumentStatus.WAITING, revision=revision))
            producer.flush()
            revision += 1
            time.sleep(0.2)

    writer = threading.Thread(target=keep_reporting, daemon=True)
    writer.start()
    try:
        time.sleep(1)
        result: list = []
        reader = threading.Thread(target=lambda: result.append(rebuild(settings)), daemon=True)
        started = time.monotonic()
        reader.start()
        reader.join(60)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        writer.join(5)
    assert result, f"the rebuild was still reading after {elapsed:.0f}s of continuous reports"
    store = StateStore(redis_client(settings), settings.keys)
    assert {f"default/doc-{n}" for n in range(20)} <= {s.key for s in store.dataset("default", "ds")}


def test_a_rebuild_keeps_what_the_live_projector_folded_after_it_read(pipeline_topics: Settings):
    settings = pipeline_topics
    store = StateStore(redis_client(settings), settings.keys)
    publish(settings, event("late", DocumentStatus.WAITING, name="late.txt"), event("late", DocumentStatus.PARSING),
            event("lost", DocumentStatus.WAITING, name="lost.txt"))
    folded = fold_status_topic(settings)  # the rebuild has read the topic ...

    # ... and the live projector folds a newer report before the rebuild writes.
    publish(settings, event("late", DocumentStatus.COMPLETED, segment_count=3, token_count=30, progress=1.0))
    [completed] = [
        m for m in TopicReader(settings, settings.topic(STATUS.name)).read()
        if STATUS.codec.decode(m.value()).status is DocumentStatus.COMPLETED
    ]
    assert store.fold(STATUS.codec.decode(completed.value()), completed.offset()) is not None

    report = store.merge(folded.values())

    assert store.get("default/late").status is DocumentStatus.COMPLETED  # not set back to parsing
    assert store.get("default/lost").status is DocumentStatus.WAITING  # restored
    assert (report.written, report.kept) == (1, ["default/late"])


def test_what_an_event_changes_is_decided_by_the_reducer_not_its_offset(settings: Settings):
    store = StateStore(redis_client(settings), settings.keys)
    store.fold(event("wiped", DocumentStatus.WAITING, name="w.txt"), 500)
    completed = event("wiped", DocumentStatus.COMPLETED, segment_count=1, token_count=9, progress=1.0)
    assert store.fold(completed, 501).status is DocumentStatus.COMPLETED
    # Redelivered (a crash before its state was published): the same state, to publish again.
    assert store.fold(completed, 501) == store.get("default/wiped")

    # The embedded broker lost its topics: offsets start again, the states in Redis did not.
    state = store.fold(event("wiped", DocumentStatus.WAITING, revision=2, name="w.txt"), 3)
    assert state is not None and store.get("default/wiped").revision == 2
