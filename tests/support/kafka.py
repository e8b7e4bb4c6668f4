"""Plain Kafka helpers for tests: produce, and read a topic back from the beginning."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from services.runtime.settings import Settings


def produce(settings: Settings, topic: str, records: list[tuple[bytes | str | None, bytes]]) -> list[tuple[int, int]]:
    """Send records and return (partition, offset) of each, in order."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers})
    placed: list[tuple[int, int] | None] = [None] * len(records)

    def report(i: int) -> Callable:
        def on_delivery(err, msg: Message) -> None:
            assert err is None, err
            placed[i] = (msg.partition(), msg.offset())

        return on_delivery

    for i, (key, value) in enumerate(records):
        producer.produce(topic, key=key, value=value, on_delivery=report(i))
        producer.poll(0)
    assert producer.flush(30) == 0
    return [p for p in placed if p is not None]


def read_topic(
    settings: Settings,
    topic: str,
    until: Callable[[list[Message]], bool] = lambda ms: False,
    timeout: float = 30.0,
    idle: float | None = None,
    partitions: int | None = None,
) -> list[Message]:
    """Read ``topic`` from the start until ``until(messages)`` holds, ``timeout`` passes, or (with
    ``idle``) no record arrived for ``idle`` seconds. Assigns partitions directly: no group."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    count = partitions or settings.partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in range(count)])
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    try:
        while time.monotonic() < deadline and not until(messages):
            batch = consumer.consume(500, timeout=0.2)
            batch = [m for m in batch if not m.error()]
            if batch:
                messages.extend(batch)
                last = time.monotonic()
            elif idle is not None and time.monotonic() - last > idle:
                break
    finally:
        consumer.close()
    return messages


def committed(settings: Settings, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offset per partition (-1001 when none)."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": group})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in found}
