"""Two indexers, one writing a revision late while the other removes it (two lanes of a partition,
or the old and the new owner during a rebalance), interleaved step by step against the real
servers: the writer registers its part, the cleaner removes the revision and drops its registry
entry, the writer's bulk lands, the writer checks the revision again. No chunk may be left."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator

import pytest
from confluent_kafka import Message
from elasticsearch import Elasticsearch

from schemas import EMBEDDED, DocumentRetracted, EmbeddedBatch, EmbeddedSegment, IndexingSpec, Stage, segment_id
from services.indexer.handler import Indexer
from services.indexer.mapping import all_chunk_indices
from services.runtime.dead_letters import DeadLetters
from services.runtime.handler import Context
from services.runtime.producer import Producer
from services.runtime.redis_client import redis_client
from services.runtime.revisions import Revisions
from services.runtime.settings import Settings
from services.runtime.status import StatusEmitter
from tests.support.elasticsearch_proxy import ElasticsearchProxy
from tests.support.kafka import produce, read_topic
from topics.catalog import EMBEDDED as EMBEDDED_TOPIC

KEY = "default/late"


def indexer(settings: Settings) -> Indexer:
    producer = Producer(settings)
    status = StatusEmitter(producer, Stage.INDEXER)
    revisions = Revisions(redis_client(settings), settings.keys)
    return Indexer(Context(settings, producer, status, revisions, DeadLetters(producer, status, revisions, EMBEDDED_TOPIC)))


def records(settings: Settings, *events: EmbeddedBatch | DocumentRetracted) -> list[Message]:
    """``events`` through the embedded topic, as an indexer receives them."""
    topic = settings.topic(EMBEDDED_TOPIC.name)
    produce(settings, topic, [(event.key, EMBEDDED.encode(event)) for event in events])
    return read_topic(settings, topic, until=lambda ms: len(ms) == len(events))


class HeldBulk:
    """A proxy rule holding the first bulk request back until released."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()

    def __call__(self, method: str, path: str) -> None:
        if path.startswith("/_bulk") and not self.arrived.is_set():
            self.arrived.set()
            assert self.release.wait(60)


@pytest.fixture
def proxy(pipeline_topics: Settings) -> Iterator[ElasticsearchProxy]:
    with ElasticsearchProxy(pipeline_topics.elasticsearch_url) as running:
        yield running


def test_a_late_writer_removes_what_it_wrote_after_a_cleaner_dropped_the_registry_entry(
        pipeline_topics: Settings, proxy: ElasticsearchProxy):
    settings = pipeline_topics
    revision = int(time.time() * 1000)
    texts = ["Herons wait.", "Otters dive.", "Kestrels hover."]
    written = EmbeddedBatch(
        tenant_id="default", dataset_id="late", document_id="late", revision=revision, name="late.txt",
        indexing=IndexingSpec(), part=0, parts=1, segments=[EmbeddedSegment(
            segment_id=segment_id(KEY, revision, 0, n), position=n, content=text, tokens=2, word_count=2,
            content_hash=hashlib.sha256(text.encode()).hexdigest()) for n, text in enumerate(texts)])
    deleted = DocumentRetracted(tenant_id="default", dataset_id="late", document_id="late", revision=revision + 1,
                                reason="deleted")
    write, delete = records(settings, written, deleted)
    writer = indexer(settings.model_copy(update={"elasticsearch_url": proxy.url}))
    cleaner = indexer(settings)

    writer.handle(write)
    proxy.rule = held = HeldBulk()
    writing = threading.Thread(target=writer.flush)
    writing.start()
    assert held.arrived.wait(60)  # registered, its bulk on the way
    cleaner.handle(delete)
    cleaner.flush()
    assert redis_client(settings).hgetall(settings.keys.chunks(KEY)) == {}
    held.release.set()  # the bulk lands, then the writer checks its revision again
    writing.join(60)
    for handler in (writer, cleaner):
        handler.context.producer.flush()

    es = Elasticsearch(settings.elasticsearch_url)
    es.indices.refresh(index=all_chunk_indices(settings.topic_prefix))
    left = es.count(index=all_chunk_indices(settings.topic_prefix), query={"term": {"document_key": KEY}})["count"]
    assert left == 0
