"""One priority lane of a stage: a consumer in a group of its own, reading the lane's topic of each
of the stage's inputs into a read-ahead served round-robin across tenants. While the read-ahead is
full the lane's partitions are paused (Kafka keeps the backlog, not this process's memory).

A partition whose log goes back below what the lane had read (a broker that came back without its
records) is read again from its start: otherwise the consumer would wait at its old position for
the new log to grow past it, and then skip what lies below. The records read from the old log are
dropped, and the loss is reported so the watchdog re-drives their documents at once."""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from schemas import Priority
from services.runtime.kafka import consumer_config
from services.runtime.metrics import CONSUMER_LAG, RECORDS_LOST, SERVER_WAIT
from services.runtime.read_ahead import Offsets, Partition, ReadAhead, partition_of
from services.runtime.settings import Settings
from topics import TopicSpec

log = logging.getLogger(__name__)

_READ_AT_ONCE = 500


class Lane:
    def __init__(self, settings: Settings, priority: Priority, stage: str, inputs: tuple[TopicSpec, ...],
                 on_records_lost: Callable[[], None] = lambda: None):
        self.priority = priority
        self.on_records_lost = on_records_lost
        self.group_id = settings.group(stage, priority)
        self.topics = [settings.topic(spec.lane(priority).name) for spec in inputs
                       if spec.laned or priority is Priority.INTERACTIVE]
        # Offsets run without gaps in these (no compaction, no transactions): a gap is lost records.
        self._gapless = {settings.topic(spec.lane(priority).name) for spec in inputs
                         if spec.configs.get("cleanup.policy", "delete") == "delete"}
        self.consumer = Consumer(consumer_config(settings, self.group_id))
        self.queue = ReadAhead(settings.read_ahead_bytes, settings.read_ahead_records)
        self.held = False  # paused because the read-ahead is full
        self._committed: dict[Partition, int] = {}  # what the group has committed, as far as seen here

    def read(self, timeout: float = 0.0) -> None:
        """Move what the consumer has fetched into the read-ahead, waiting up to ``timeout`` for a
        first record when it is empty. Also what keeps the consumer in its group: call it often."""
        if timeout and not self.queue:
            first = self.consumer.poll(timeout)
            if first is not None:
                self._add([first])
        while True:
            messages = self.consumer.consume(_READ_AT_ONCE, timeout=0)
            self._add(messages)
            if len(messages) < _READ_AT_ONCE or self.queue.full:
                break
        if self.queue.full and not self.held:
            self.consumer.pause(self.consumer.assignment())
            self.held = True
        elif self.held and self.queue.low:
            self.held = False
            self.consumer.resume(self.consumer.assignment())

    def _add(self, messages: list[Message]) -> None:
        arrived: set[Partition] = set()
        for message in messages:
            if message.error():
                if message.error().fatal():
                    raise KafkaException(message.error())
                log.warning("consume error: %s", message.error())
                continue
            partition = partition_of(message)
            expected = self.queue.next_offset(partition)
            if expected is not None and message.offset() < expected:
                # The consumer was reset into a shorter log already: drop what came from the old one.
                self._rewound(partition, expected, seek=False)
            elif expected is not None and message.offset() > expected and message.topic() in self._gapless:
                self._skipped(partition, expected, message.offset())
            self.queue.add(message)
            arrived.add(partition)
        if self.held and arrived:
            # Partitions assigned while the lane was held: hold them too (read up to here).
            self.consumer.pause([TopicPartition(t, p) for t, p in arrived])

    def pause(self) -> None:
        self.consumer.pause(self.consumer.assignment())

    def resume(self) -> None:
        if not self.held:
            self.consumer.resume(self.consumer.assignment())

    def commit(self, offsets: Offsets) -> None:
        try:
            with SERVER_WAIT.labels("kafka").time():
                self.consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                                     asynchronous=False)
            self._committed.update(offsets)
        except KafkaException as exc:
            # Typically a rebalance took the partitions: the new owner replays from the last
            # committed offset, and the effects are idempotent.
            log.warning("commit failed, records will be redelivered: %s", exc)

    def assigned(self, committed: list[TopicPartition]) -> None:
        """The group's committed offsets of newly assigned partitions (nothing yet: from 0)."""
        self._committed.update({(tp.topic, tp.partition): max(tp.offset, 0) for tp in committed})

    def revoked(self, partitions: list[TopicPartition]) -> None:
        self.queue.drop((p.topic, p.partition) for p in partitions)
        for tp in partitions:
            if self._committed.pop((tp.topic, tp.partition), None) is not None:
                CONSUMER_LAG.remove(self.group_id, tp.topic, str(tp.partition))

    def report_lag(self) -> None:
        """Each assigned partition's lag, from the high watermark the last fetch reported (the
        embedded broker's ListOffsets answer is wrong; a fetch's watermark is right). A partition
        whose log now ends below what was read from it is read again from its start."""
        for (topic, partition), committed in list(self._committed.items()):
            _, high = self.consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
            if high < 0:
                continue
            read = max(committed, self.queue.next_offset((topic, partition)) or 0)
            if high < read:
                self._rewound((topic, partition), read, seek=True)
                continue
            CONSUMER_LAG.labels(self.group_id, topic, str(partition)).set(max(0, high - committed))

    def _skipped(self, partition: Partition, expected: int, arrived: int) -> None:
        """Records the consumer jumped over: retention deleted them before they were read, and
        ``auto.offset.reset`` moved the consumer past them. Documents they carried that some stage
        has seen are re-driven by the watchdog; one only its upstream producer knew of must be sent
        again from there, so the range is logged and counted."""
        log.error("%s[%d]: records %d..%d were deleted before %s read them (retention?); their documents "
                  "are re-driven where known", *partition, expected, arrived - 1, self.group_id)
        RECORDS_LOST.labels(self.group_id, partition[0]).inc(arrived - expected)
        self.on_records_lost()

    def _rewound(self, partition: Partition, read: int, seek: bool) -> None:
        log.error("%s[%d]: the log went back below offset %d that %s had read (a broker that lost its "
                  "records?); reading it again from its start", *partition, read, self.group_id)
        self.queue.drop([partition])
        self._committed[partition] = 0
        if seek:
            try:
                self.consumer.seek(TopicPartition(*partition, OFFSET_BEGINNING))
            except KafkaException as exc:
                log.warning("could not seek %s[%d] to its start: %s", *partition, exc)
        self.on_records_lost()

    def close(self) -> None:
        self.consumer.close()  # leaves the group now, so partitions move without a session timeout
