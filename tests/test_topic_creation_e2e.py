"""No process of ours makes a topic with the broker's defaults: a topic lost with a broker (or
never applied) waits for `indexflow topics apply`, which gives it its declared partitions and
retention. A producer that made it first (one partition, the broker's retention) would split a
document's records from their partition order and fail the apply that follows."""

from __future__ import annotations

from confluent_kafka import Producer

from services.runtime.kafka import admin_client, producer_config
from services.runtime.settings import Settings


def test_a_producer_never_creates_a_missing_topic(settings: Settings):
    topic = settings.topic("never-applied")
    producer = Producer({**producer_config(settings), "message.timeout.ms": 3000})
    failures = []
    producer.produce(topic, b"a record", on_delivery=lambda error, _: failures.append(error))
    producer.flush(10)
    assert topic not in admin_client(settings).list_topics(timeout=10).topics
    assert failures and failures[0] is not None  # its sender is told, as for any record not stored
