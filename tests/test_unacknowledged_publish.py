"""A write the gateway answered 503 (Kafka did not acknowledge in time) is retried by its client:
the retry must publish again, not be answered ``unchanged`` with the revision that was never
acknowledged. librdkafka keeps the unacknowledged record and may deliver it minutes later; the
retry's newer revision wins wherever the two meet. Here the broker is frozen (SIGSTOP) while the
first attempt waits, and thawed before the retry, so the first record does land late."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from deploy.stack import Stack
from schemas import IndexingSpec
from services.gateway.publisher import DocumentPublisher
from services.projector.store import StateStore
from services.runtime.errors import DependencyUnavailable
from services.runtime.redis_client import redis_client
from tests.support.stacks import own_stack


@pytest.fixture
def kafka_and_redis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with own_stack(tmp_path, monkeypatch, ("kafka", "redis"), INDEXFLOW_KAFKA_ACK_TIMEOUT_SECONDS="3",
                   INDEXFLOW_BLOB_ROOT=str(tmp_path / "blobs")) as stack:
        yield stack


def test_a_retry_after_an_unacknowledged_publish_publishes_again(kafka_and_redis: Stack):
    settings = kafka_and_redis.settings
    publisher = DocumentPublisher(settings, StateStore(redis_client(settings), settings.keys))

    def upload(text: str):
        return publisher.upsert(tenant_id="acme", dataset_id="d", document_id="doc", name="doc.txt",
                                indexing=IndexingSpec(), metadata={}, batch="b", text=text)

    first = upload("version one")
    broker = kafka_and_redis._process(kafka_and_redis.components[0]).pid()
    os.kill(broker, signal.SIGSTOP)
    try:
        with pytest.raises(DependencyUnavailable):
            upload("version two")  # the client is answered 503
    finally:
        os.kill(broker, signal.SIGCONT)

    retried = upload("version two")
    assert not retried.unchanged, "the retry was answered unchanged with a revision never acknowledged"
    assert retried.event.revision > first.event.revision
    assert publisher.registry.newest_upsert(retried.event.key).revision == retried.event.revision
