"""A Kafka broker restart is a non-event for the clients: a producer that lost its broker heals
itself once the broker is back, however the broker came back. The embedded broker on in-memory
storage comes back without any producer state, the case that left an idempotent librdkafka producer
retrying silently for five minutes (every gateway write a 503) until the services were restarted."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from deploy.stack import Stack
from schemas import DocumentDeleted
from services.runtime.errors import DependencyUnavailable
from services.runtime.kafka import admin_client
from services.runtime.producer import Producer
from tests.support.kafka import read_topic
from tests.support.stacks import own_stack
from topics import TOPICS, apply_topics
from topics.catalog import DOCUMENTS


@pytest.fixture
def broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A broker of the test's own (in memory: the harshest restart), nothing else. Its clients are
    idempotent, as against a real cluster: the kind that stays stuck when its broker comes back
    without its producer id (a real broker that expired it, here one that lost it)."""
    with own_stack(tmp_path, monkeypatch, ("kafka",), INDEXFLOW_KAFKA_IDEMPOTENCE="true") as stack:
        yield stack


def restart(stack: Stack) -> None:
    kafka = stack.components[0]
    os.kill(stack._process(kafka).pid(), signal.SIGKILL)
    time.sleep(1)
    stack.up()
    assert apply_topics(admin_client(stack.settings), TOPICS, stack.settings).ok


def deletion(n: int) -> DocumentDeleted:
    return DocumentDeleted(tenant_id="acme", dataset_id="d", document_id=f"doc-{n}", revision=n)


def test_a_waiting_publish_succeeds_soon_after_the_broker_came_back_without_producer_state(broker: Stack):
    settings = broker.settings
    producer = Producer(settings)
    producer.publish_and_wait(DOCUMENTS, deletion(1))

    restart(broker)
    started = time.monotonic()
    producer.publish_and_wait(DOCUMENTS, deletion(2), timeout=30)
    took = time.monotonic() - started

    assert took < 15, f"the first write after the restart waited {took:.1f}s"
    [record] = read_topic(settings, settings.topic("documents"), until=lambda ms: len(ms) >= 1, idle=3)
    assert b"doc-2" in record.value()


def test_a_stage_flush_fails_its_batch_once_then_publishes_again(broker: Stack):
    settings = broker.settings
    producer = Producer(settings)
    producer.publish(DOCUMENTS, deletion(1))
    producer.flush()

    restart(broker)
    producer.publish(DOCUMENTS, deletion(2))
    started = time.monotonic()
    with pytest.raises(DependencyUnavailable):
        producer.flush(timeout=30)  # the batch is redone (the consumer loop's outage path)
    assert time.monotonic() - started < 15
    producer.publish(DOCUMENTS, deletion(3))
    producer.flush(timeout=10)
    values = [m.value() for m in read_topic(settings, settings.topic("documents"), idle=3)]
    assert any(b"doc-3" in v for v in values)
