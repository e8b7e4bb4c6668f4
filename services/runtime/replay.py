"""Read a topic from its beginning without a consumer group (rebuilds, inspection)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from services.runtime.settings import Settings


def replay(settings: Settings, topic: str, idle_seconds: float = 3.0) -> Iterator[Message]:
    """Every record of ``topic``, partition by partition in offset order, until none arrives for
    ``idle_seconds`` (the embedded broker's end offsets can't be trusted to say when to stop)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": f"replay-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    last = time.monotonic()
    try:
        while time.monotonic() - last < idle_seconds:
            batch = consumer.consume(1000, timeout=0.5)
            for message in batch:
                if not message.error():
                    last = time.monotonic()
                    yield message
    finally:
        consumer.close()
