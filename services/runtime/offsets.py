"""Where consumer groups stand, read from outside them: a group's committed offsets (a consumer
that never joins), and each partition's first and end offsets from a fetch response (the embedded
broker answers ListOffsets "latest" wrongly; the watermarks a fetch reports are right, on Apache
Kafka too)."""

from __future__ import annotations

import time
from functools import cached_property

from confluent_kafka import Consumer, KafkaError, TopicPartition

from services.runtime.kafka import consumer_config
from services.runtime.settings import Settings

Partition = tuple[str, int]
_TIMEOUT_SECONDS = 10.0


class OffsetProbe:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._groups: dict[str, Consumer] = {}  # never subscribe: they only read their group's commits

    @cached_property
    def _fetcher(self) -> Consumer:
        config = consumer_config(self.settings, self.settings.group("offset-probe"))
        # Only a fetch response's watermarks are wanted, not the records: one small one at most.
        return Consumer({**config, "enable.partition.eof": True, "max.partition.fetch.bytes": 1024,
                         "fetch.wait.max.ms": 10})

    def committed(self, group: str, partitions: list[Partition]) -> dict[Partition, int]:
        """The group's committed offset of each partition (0 where it has committed nothing)."""
        if group not in self._groups:
            self._groups[group] = Consumer(consumer_config(self.settings, group))
        found = self._groups[group].committed([TopicPartition(t, p) for t, p in partitions], timeout=_TIMEOUT_SECONDS)
        return {(tp.topic, tp.partition): max(tp.offset, 0) for tp in found}

    def watermarks(self, starts: dict[Partition, int]) -> dict[Partition, tuple[int, int]]:
        """(first, end) offset of each partition, from fetches starting at ``starts`` (where a
        group stands: from there a fetch returns at most a record, or the end at once). Partitions
        that did not answer within the timeout are left out."""
        if not starts:
            return {}
        fetcher = self._fetcher
        fetcher.assign([TopicPartition(t, p, offset) for (t, p), offset in starts.items()])
        found: dict[Partition, tuple[int, int]] = {}
        deadline = time.monotonic() + _TIMEOUT_SECONDS
        try:
            while len(found) < len(starts) and time.monotonic() < deadline:
                for message in fetcher.consume(len(starts), timeout=0.2):
                    error = message.error()
                    if error and error.code() != KafkaError._PARTITION_EOF:
                        continue
                    partition = (message.topic(), message.partition())
                    if partition in found:
                        continue
                    low, high = fetcher.get_watermark_offsets(TopicPartition(*partition), cached=True)
                    if error:  # at the end: the EOF's offset is the end offset
                        high = message.offset()
                    found[partition] = (max(low, 0), high)
        finally:
            fetcher.unassign()
        return found

    def close(self) -> None:
        fetcher = self.__dict__.pop("_fetcher", None)  # only if it was ever made
        for consumer in [*([fetcher] if fetcher else []), *self._groups.values()]:
            consumer.close()
        self._groups.clear()
