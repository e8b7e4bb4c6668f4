"""How the consumer loop treats failures, on the real broker: bad records go to the DLQ byte for
byte and their document ends in error; flaky ones are retried; an outage never dead-letters."""

from __future__ import annotations

import threading
from collections import Counter

import schemas
from schemas import DocumentUpserted, InlineSource, Stage
from services.runtime.errors import DependencyUnavailable, PermanentError
from services.runtime.handler import Handler
from services.runtime.loop import ConsumerLoop
from services.runtime.settings import Settings
from tests.support.kafka import committed, produce, read_topic
from topics.catalog import DLQ, DOCUMENTS, STATUS


class Picky(Handler):
    stage = Stage.SPLITTER
    inputs = (DOCUMENTS,)
    handled: Counter = Counter()
    calls: Counter = Counter()

    def handle(self, message):
        event = schemas.DOCUMENT_EVENTS.decode(message.value())
        Picky.calls[event.name] += 1
        failures = {"flaky": RuntimeError("flaky"), "outage": DependencyUnavailable("redis down", retry_after=0.2)}
        if event.name == "unsupported":
            raise PermanentError("unsupported file type application/x-msdownload")
        if event.name == "broken":
            raise RuntimeError("always fails")
        if event.name in failures and Picky.calls[event.name] <= 2:
            raise failures[event.name]
        Picky.handled[event.name] += 1


def upsert(name: str, document_id: str) -> bytes:
    event = DocumentUpserted(
        tenant_id="acme", dataset_id="ds", document_id=document_id, revision=1, name=name, source=InlineSource(text="t")
    )
    return schemas.DOCUMENT_EVENTS.encode(event)


def test_failures_are_retried_dead_lettered_or_waited_out(pipeline_topics: Settings):
    settings = pipeline_topics
    garbage = b"\x89PNG not a document event"
    # One key, so all six land in one partition in this order and are consumed as one batch.
    names = ["unsupported", "ok", "flaky", "broken", "outage"]
    records = [(b"acme/batch", garbage)] + [(b"acme/batch", upsert(name, f"d{i}")) for i, name in enumerate(names, 1)]
    placed = produce(settings, settings.topic(DOCUMENTS.name), records)

    loop = ConsumerLoop(settings, Picky, retry_backoff=0.05)
    worker = threading.Thread(target=loop.run)
    worker.start()
    try:
        letters = read_topic(settings, settings.topic(DLQ.name), until=lambda ms: len(ms) >= 3, timeout=60)
        errors = read_topic(settings, settings.topic(STATUS.name), until=lambda ms: len(ms) >= 2, timeout=30)
        for _ in range(100):
            if Picky.handled["outage"]:
                break
            threading.Event().wait(0.1)
    finally:
        loop.stop()
        worker.join(timeout=30)
    assert not worker.is_alive()

    dead = [schemas.DEAD_LETTERS.decode(m.value()) for m in letters]
    assert [letter.source_offset for letter in dead] == [placed[0][1], placed[1][1], placed[4][1]]
    garbled, unsupported, broken = dead
    assert garbled.inline_value == garbage and garbled.error_type == "MalformedRecord"
    assert garbled.document_id is None  # too broken to name its document
    assert garbled.source_key == "acme/batch"
    assert unsupported.attempts == 1 and "unsupported file type" in unsupported.error
    assert unsupported.document_id == "d1" and unsupported.revision == 1
    assert broken.attempts == 3 and broken.error == "always fails" and broken.error_type == "RuntimeError"
    assert schemas.DOCUMENT_EVENTS.decode(broken.inline_value).name == "broken"

    statuses = [schemas.STATUS.decode(m.value()) for m in errors]
    assert {(s.document_id, s.status, s.stage) for s in statuses} == {
        ("d1", "error", "splitter"),
        ("d4", "error", "splitter"),
    }
    # What finished before the outage was committed, not redone: each handled exactly once here.
    assert Picky.handled == Counter({"ok": 1, "flaky": 1, "outage": 1})
    assert Picky.calls["flaky"] == 3 and Picky.calls["outage"] == 3 and Picky.calls["broken"] == 3

    group = f"{settings.topic_prefix}{Stage.SPLITTER.value}"
    [partition] = {p for p, _ in placed}
    assert len(read_topic(settings, settings.topic(DLQ.name), idle=1.0)) == 3, "nothing dead-lettered twice"
    assert committed(settings, group, settings.topic(DOCUMENTS.name), 6)[partition] == placed[-1][1] + 1


class FlakySink(Handler):
    """Buffers records and writes them in flush, like the indexer; its first flushes raise
    ``failures`` one by one."""

    stage = Stage.INDEXER
    inputs = (DOCUMENTS,)
    failures: list[BaseException] = [DependencyUnavailable("elasticsearch down", retry_after=0.2)]
    written: list[str] = []
    flushes = 0

    def __init__(self, context):
        super().__init__(context)
        self.pending: list[str] = []

    def handle(self, message):
        self.pending.append(schemas.DOCUMENT_EVENTS.decode(message.value()).name)

    def flush(self):
        pending, self.pending = self.pending, []
        cls = type(self)
        cls.flushes += 1
        if cls.flushes <= len(cls.failures):
            raise cls.failures[cls.flushes - 1]
        cls.written += pending


def test_a_failed_flush_commits_nothing_and_the_batch_is_redone(pipeline_topics: Settings):
    settings = pipeline_topics
    placed = produce(settings, settings.topic(DOCUMENTS.name), [(b"acme/batch", upsert(f"n{i}", f"d{i}")) for i in range(5)])
    loop = ConsumerLoop(settings, FlakySink, retry_backoff=0.05)
    worker = threading.Thread(target=loop.run)
    worker.start()
    try:
        for _ in range(300):
            if len(FlakySink.written) >= 5:
                break
            threading.Event().wait(0.1)
    finally:
        loop.stop()
        worker.join(timeout=30)
    assert FlakySink.written == [f"n{i}" for i in range(5)], "every record written once the outage passed"
    group = f"{settings.topic_prefix}{Stage.INDEXER.value}"
    [partition] = {p for p, _ in placed}
    assert committed(settings, group, settings.topic(DOCUMENTS.name), 6)[partition] == placed[-1][1] + 1
