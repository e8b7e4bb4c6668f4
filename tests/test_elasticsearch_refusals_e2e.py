"""Elasticsearch refusing every client (a credential that expired, a write block, no shards left
for a new index) is an outage, never the document's fault: a real indexer, reaching the real
server through a loopback proxy that refuses for a while, backs off and retries, and the document
ends `completed` with its content in the index, where it used to end in `error`, its revision
retracted and the content it had already served removed."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch

from schemas import EMBEDDED, STATUS, DocumentStatus, EmbeddedBatch, EmbeddedSegment, IndexingSpec, segment_id
from services.indexer.handler import Indexer
from services.indexer.mapping import all_chunk_indices
from services.runtime.loop import ConsumerLoop
from services.runtime.settings import Settings
from tests.support.elasticsearch_proxy import Answer, ElasticsearchProxy, Refusing
from tests.support.kafka import produce, read_topic
from topics.catalog import DLQ
from topics.catalog import EMBEDDED as EMBEDDED_TOPIC
from topics.catalog import STATUS as STATUS_TOPIC

REFUSALS = 3  # what the loop's three attempts at a record would have dead-lettered
EXPIRED_KEY: Answer = (401, {"error": {
    "type": "security_exception", "reason": "unable to authenticate with provided credentials and anonymous "
    "access is not allowed for this request", "header": {"WWW-Authenticate": ["ApiKey"]}}, "status": 401})
WRITE_BLOCK: Answer = (403, {"error": {
    "type": "cluster_block_exception", "reason": "blocked by: [FORBIDDEN/8/index write (api)];"}, "status": 403})
NO_SHARDS_LEFT: Answer = (400, {"error": {
    "type": "validation_exception", "reason": "Validation Failed: 1: this action would add [1] shards, but this "
    "cluster currently has [1000]/[1000] maximum normal shards open;"}, "status": 400})


def refusal(case: str) -> Refusing:
    if case == "expired credential":
        return Refusing(REFUSALS, EXPIRED_KEY)
    if case == "write block":
        return Refusing(REFUSALS, WRITE_BLOCK, lambda method, path: path.startswith("/_bulk"))
    return Refusing(REFUSALS, NO_SHARDS_LEFT, lambda method, path: method == "PUT" and "/" not in path[1:])


@pytest.fixture
def proxy(pipeline_topics: Settings) -> Iterator[ElasticsearchProxy]:
    with ElasticsearchProxy(pipeline_topics.elasticsearch_url) as running:
        yield running


@pytest.fixture
def indexer(pipeline_topics: Settings, proxy: ElasticsearchProxy) -> Iterator[None]:
    """A real indexer whose Elasticsearch is the proxy."""
    loop = ConsumerLoop(pipeline_topics.model_copy(update={"elasticsearch_url": proxy.url}), Indexer)
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    yield
    loop.stop()
    thread.join(60)


def part(revision: int, model: str | None, texts: list[str]) -> EmbeddedBatch:
    key = "default/refused"
    segments = [EmbeddedSegment(
        segment_id=segment_id(key, revision, 0, n), position=n, content=text, tokens=len(text.split()),
        content_hash=hashlib.sha256(text.encode()).hexdigest(), word_count=len(text.split()),
        vector=[1.0, 0.5, 0.25, n + 1.0] if model else None) for n, text in enumerate(texts)]
    return EmbeddedBatch(tenant_id="default", dataset_id="refusals", document_id="refused", revision=revision,
                         name="refused.txt", indexing=IndexingSpec(), part=0, parts=1, model=model,
                         dims=4 if model else None, segments=segments)


def publish_and_wait(settings: Settings, batch: EmbeddedBatch) -> list[DocumentStatus]:
    """``batch``'s statuses up to the first terminal one."""
    produce(settings, settings.topic(EMBEDDED_TOPIC.name), [(batch.key, EMBEDDED.encode(batch))])
    terminal = {DocumentStatus.COMPLETED, DocumentStatus.ERROR}

    def statuses(messages: list) -> list[DocumentStatus]:
        events = (STATUS.decode(m.value()) for m in messages)
        return [e.status for e in events if e.revision == batch.revision]

    messages = read_topic(settings, settings.topic(STATUS_TOPIC.name),
                          until=lambda ms: bool(terminal & set(statuses(ms))), timeout=120)
    return statuses(messages)


def revisions_indexed(settings: Settings) -> list[int]:
    es = Elasticsearch(settings.elasticsearch_url)
    es.indices.refresh(index=all_chunk_indices(settings.topic_prefix), allow_no_indices=True)
    hits = es.search(index=all_chunk_indices(settings.topic_prefix), query={"term": {"document_key": "default/refused"}},
                     allow_no_indices=True, size=100)["hits"]["hits"]
    return sorted(hit["_source"]["revision"] for hit in hits)


@pytest.mark.parametrize("case", ["expired credential", "write block", "no shards left"])
def test_a_refusing_cluster_is_an_outage_not_the_documents_fault(pipeline_topics: Settings, proxy: ElasticsearchProxy,
                                                                 indexer: None, case: str):
    settings = pipeline_topics
    served = int(time.time() * 1000)
    assert publish_and_wait(settings, part(served, "m", ["Tides turn twice a day."]))[-1] is DocumentStatus.COMPLETED

    # The next revision goes to an index of its own (economy: no model), so its first request
    # makes that index: what a new dataset's first document does.
    proxy.rule = rule = refusal(case)
    statuses = publish_and_wait(settings, part(served + 1, None, ["Estuaries mix salt and fresh water.", "Turbines."]))

    assert rule.refused == REFUSALS
    assert DocumentStatus.ERROR not in statuses and statuses[-1] is DocumentStatus.COMPLETED, statuses
    assert revisions_indexed(settings) == [served + 1, served + 1]  # the old revision removed only once superseded
    dead = read_topic(settings, settings.topic(DLQ.name), idle=2, timeout=5)
    assert dead == []
