"""Read a topic without a consumer group (rebuilds, inspection), to the end it had when the read began."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from services.runtime.kafka import consumer_config
from services.runtime.settings import Settings


class TopicReader:
    """Each ``read()`` yields the records from where the previous read stopped (the beginning, at
    first) up to every partition's high watermark as the read's first fetch reported it, partition
    by partition in offset order. Records written meanwhile are left for the next read, so a read
    ends however busy the topic is. (The end comes from fetch responses, not ListOffsets, which the
    embedded broker answers wrongly.)"""

    def __init__(self, settings: Settings, topic: str):
        self.settings = settings
        self.topic = topic
        self.next_offsets: dict[int, int] = {}

    def read(self) -> Iterator[Message]:
        config = consumer_config(self.settings, self.settings.group(f"reader-{uuid.uuid4().hex}"))
        consumer = Consumer({**config, "enable.partition.eof": True})
        try:
            partitions = sorted(consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions)
            consumer.assign([
                TopicPartition(self.topic, p, self.next_offsets.get(p, OFFSET_BEGINNING)) for p in partitions
            ])
            ends: dict[int, int] = {}
            open_partitions = set(partitions)
            while open_partitions:
                for message in consumer.consume(1000, timeout=1.0):
                    partition = message.partition()
                    if partition not in open_partitions:
                        continue
                    if message.error():
                        if message.error().code() == KafkaError._PARTITION_EOF:
                            self._close(consumer, open_partitions, partition)
                        continue
                    if partition not in ends:
                        _, high = consumer.get_watermark_offsets(TopicPartition(self.topic, partition), cached=True)
                        if high >= 0:  # else the partition's end-of-file event closes it
                            ends[partition] = high
                    end = ends.get(partition)
                    if end is not None and message.offset() >= end:
                        self._close(consumer, open_partitions, partition)
                        continue
                    self.next_offsets[partition] = message.offset() + 1
                    yield message
                    if end is not None and message.offset() + 1 >= end:
                        self._close(consumer, open_partitions, partition)
        finally:
            consumer.close()

    def _close(self, consumer: Consumer, open_partitions: set[int], partition: int) -> None:
        open_partitions.discard(partition)
        consumer.pause([TopicPartition(self.topic, partition)])
