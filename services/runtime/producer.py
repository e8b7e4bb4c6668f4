"""A Kafka producer whose sends are checked: ``flush`` raises unless every record was acknowledged,
and ``publish_and_wait`` reports on exactly the record it sent (many request threads share one
producer, so a failure of someone else's record must never be taken for one's own)."""

from __future__ import annotations

import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

import confluent_kafka

from schemas import Envelope, Priority
from services.runtime.errors import DependencyUnavailable
from services.runtime.kafka import producer_config
from services.runtime.metrics import SERVER_WAIT
from services.runtime.settings import Settings
from topics import TopicSpec

_WAITED = SERVER_WAIT.labels("kafka")


class Producer:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._producer = confluent_kafka.Producer(producer_config(settings))
        self._failures: list[str] = []

    def send(self, topic: str, key: str | bytes | None, value: bytes, headers: list | None = None,
             on_delivery=None) -> None:
        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=on_delivery or self._on_delivery
                )
                break
            except BufferError:
                # Local queue full: serve delivery reports until there is room.
                self._producer.poll(0.1)
        self._producer.poll(0)

    def publish(self, spec: TopicSpec, event: Envelope) -> None:
        """Encode ``event`` with its topic's contract and send it keyed by its document, on its lane."""
        self.send(self._topic_of(spec, event), event.key, spec.codec.encode(event))

    def publish_and_wait(self, spec: TopicSpec, event: Envelope, timeout: float = 30.0) -> None:
        """Publish ``event`` and return once the broker acknowledged it; raise if it did not."""
        delivered: Future[None] = Future()

        def on_delivery(error: confluent_kafka.KafkaError | None, _message: confluent_kafka.Message) -> None:
            if error is None:
                delivered.set_result(None)
            else:
                delivered.set_exception(DependencyUnavailable(f"Kafka did not acknowledge: {error.str()}"))

        self.send(self._topic_of(spec, event), event.key, spec.codec.encode(event), on_delivery=on_delivery)
        deadline = time.monotonic() + timeout
        with _WAITED.time():
            while not delivered.done() and time.monotonic() < deadline:
                self._producer.poll(0.05)  # serves delivery reports, ours or another thread's
        try:
            delivered.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            raise DependencyUnavailable(f"Kafka did not acknowledge within {timeout:.0f}s") from None

    def _topic_of(self, spec: TopicSpec, event: Envelope) -> str:
        lane = spec.lane(event.priority if self.settings.lanes else Priority.INTERACTIVE)
        return self.settings.topic(lane.name)

    def _on_delivery(self, error: confluent_kafka.KafkaError | None, message: confluent_kafka.Message) -> None:
        if error is not None:
            self._failures.append(f"{message.topic()}: {error.str()}")

    def broker_reachable(self, timeout: float = 2.0) -> bool:
        """The cluster answers a metadata request (a health check)."""
        try:
            self._producer.list_topics(timeout=timeout)
            return True
        except confluent_kafka.KafkaException:
            return False

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for every delivery report; raise if any record was not acknowledged."""
        with _WAITED.time():
            remaining = self._producer.flush(timeout)
        failures, self._failures = self._failures, []
        if remaining:
            failures.append(f"{remaining} records not acknowledged within {timeout:.0f}s")
        if failures:
            raise DependencyUnavailable("Kafka did not acknowledge: " + "; ".join(failures[:3]))
