"""The consumer loop every service runs: consume a batch, handle it, wait for acknowledgements,
commit. At-least-once: an offset is committed only after everything its record produced is
acknowledged, so a crash at any point replays uncommitted records and loses none."""

from __future__ import annotations

import logging
import signal
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from schemas import MalformedRecord
from services.runtime.dead_letters import DeadLetters
from services.runtime.errors import OUTAGES, DependencyUnavailable, PermanentError
from services.runtime.handler import Context, Handler
from services.runtime.kafka import consumer_config
from services.runtime.producer import Producer
from services.runtime.redis_client import redis_client
from services.runtime.revisions import Revisions
from services.runtime.settings import Settings
from services.runtime.status import StatusEmitter

log = logging.getLogger(__name__)

Offsets = dict[tuple[str, int], int]


class ConsumerLoop:
    def __init__(
        self,
        settings: Settings,
        handler_class: type[Handler],
        max_attempts: int = 3,
        retry_backoff: float = 0.5,
        max_backoff: float = 30.0,
    ):
        self.settings = settings
        self.producer = Producer(settings)
        status = StatusEmitter(self.producer, handler_class.stage)
        revisions = Revisions(redis_client(settings), settings.topic_prefix)
        self.dead_letters = DeadLetters(self.producer, status)
        self.handler = handler_class(Context(settings, self.producer, status, revisions, self.dead_letters))
        self.group_id = f"{settings.topic_prefix}{handler_class.stage.value}"
        self.topics = [settings.topic(spec.name) for spec in handler_class.inputs]
        self.batch_size = handler_class.batch_size
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        self.max_backoff = max_backoff
        self.consumer = Consumer(consumer_config(settings, self.group_id))
        self._stopping = False
        self._outage_backoff = retry_backoff

    def stop(self, *_: object) -> None:
        """Finish the batch in hand, commit it, leave the group."""
        self._stopping = True

    def run(self) -> None:
        self.consumer.subscribe(self.topics)
        log.info("%s consuming %s as group %s", self.handler.__class__.__name__, self.topics, self.group_id)
        try:
            while not self._stopping:
                batch = self.consumer.consume(self.batch_size, timeout=0.5)
                if batch:
                    self._process(batch)
        finally:
            self.handler.close()
            self.consumer.close()  # leaves the group now, so partitions move without a session timeout
            self.producer.flush()

    def _process(self, batch: list[Message]) -> None:
        records = [m for m in batch if not m.error() or self._on_consume_error(m.error())]
        # Where to rewind every partition of the batch to, should any part of it fail.
        first: Offsets = {}
        for message in records:
            first.setdefault((message.topic(), message.partition()), message.offset())
        done: Offsets = {}
        try:
            for message in records:
                self._handle(message)
                done[(message.topic(), message.partition())] = message.offset() + 1
        except DependencyUnavailable as exc:
            # Keep what finished before the outage, so it isn't redone.
            self._recover(first, done, exc)
            return
        try:
            self._settle(done)
        except DependencyUnavailable as exc:
            self._recover(first, {}, exc)  # the batch's effects may be missing: redo all of it
            return
        self._outage_backoff = self.retry_backoff

    def _recover(self, first: Offsets, done: Offsets, outage: DependencyUnavailable) -> None:
        """Commit ``done`` if its effects can still be made durable, rewind the rest, back off."""
        log.warning("dependency unavailable, will retry from the first unfinished record: %s", outage)
        resume_at = first
        if done:
            try:
                self._settle(done)
                resume_at = {**first, **done}
            except DependencyUnavailable:
                pass
        self._rewind(resume_at)
        self._pause_for(outage.retry_after or self._outage_backoff)
        self._outage_backoff = min(self._outage_backoff * 2, self.max_backoff)

    def _settle(self, done: Offsets) -> None:
        """Make the handled records' effects durable, then commit their offsets."""
        self.handler.flush()
        self.producer.flush()
        if done:
            self._commit(done)

    def _handle(self, message: Message) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                self.handler.handle(message)
                return
            except DependencyUnavailable:
                raise
            except OUTAGES as exc:
                raise DependencyUnavailable(f"{type(exc).__name__}: {exc}") from exc
            except (MalformedRecord, PermanentError) as exc:
                self.dead_letters.send(message, exc, attempt)
                return
            except Exception as exc:  # noqa: BLE001 - an unexpected failure costs one record, not the service
                if attempt == self.max_attempts:
                    log.exception("giving up on %s[%d]@%d", message.topic(), message.partition(), message.offset())
                    self.dead_letters.send(message, exc, attempt)
                    return
                log.warning("attempt %d failed (%s), retrying", attempt, exc)
                time.sleep(self.retry_backoff * 2 ** (attempt - 1))

    def _on_consume_error(self, error: KafkaError) -> bool:
        if error.fatal():
            raise KafkaException(error)
        log.warning("consume error: %s", error)
        return False

    def _commit(self, following: Offsets) -> None:
        offsets = [TopicPartition(t, p, o) for (t, p), o in following.items()]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # Typically a rebalance took the partitions: the new owner replays from the last
            # committed offset, and the effects are idempotent.
            log.warning("commit failed, records will be redelivered: %s", exc)

    def _rewind(self, offsets: Offsets) -> None:
        for (topic, partition), offset in offsets.items():
            try:
                self.consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as exc:
                log.info("not rewinding %s[%d]: %s", topic, partition, exc)  # revoked meanwhile

    def _pause_for(self, seconds: float) -> None:
        """Back off without blocking the poll loop: pause every partition and keep polling, so the
        consumer stays in its group (max.poll.interval.ms) while no record is fetched."""
        assignment = self.consumer.assignment()
        self.consumer.pause(assignment)
        deadline = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < deadline:
            message = self.consumer.poll(min(0.2, max(0.0, deadline - time.monotonic())))
            if message is not None and not message.error():
                # A partition assigned during the pause delivered a record: put it back for later.
                tp = TopicPartition(message.topic(), message.partition(), message.offset())
                self.consumer.seek(tp)
                self.consumer.pause([tp])
        self.consumer.resume(self.consumer.assignment())


def run_handler(handler_class: type[Handler], settings: Settings | None = None) -> None:
    """Entry point of a service process."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    loop = ConsumerLoop(settings or Settings(), handler_class)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, loop.stop)
    loop.run()
