"""A Kafka producer whose sends are checked: ``flush`` raises unless every record was acknowledged,
and ``publish_and_wait`` reports on exactly the record it sent (many request threads share one
producer, so a failure of someone else's record must never be taken for one's own).

It also heals itself after a broker restart. An idempotent librdkafka producer whose broker came
back without its producer state (a broker that lost its log, or expired the producer id) is
answered ``UNKNOWN_PRODUCER_ID`` and retries silently until ``message.timeout.ms`` (5 minutes): it
reports nothing, and every write through it hangs. So once the connection was lost, a send left
unacknowledged for ``kafka_ack_stall_seconds`` while the cluster answers metadata means the client,
not the broker, is stuck: the client is rebuilt, and what it still held is failed (the callers redo
it: a stage its batch, the gateway the one record it waits for)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import confluent_kafka

from schemas import Envelope, Priority
from services.runtime.errors import DependencyUnavailable
from services.runtime.kafka import producer_config
from services.runtime.metrics import PRODUCER_REBUILDS, SERVER_WAIT
from services.runtime.settings import Settings
from topics import TopicSpec

log = logging.getLogger(__name__)

_WAITED = SERVER_WAIT.labels("kafka")
# librdkafka's signs that the connection to the cluster was lost.
_CONNECTION_LOST = frozenset({
    confluent_kafka.KafkaError._ALL_BROKERS_DOWN, confluent_kafka.KafkaError._TRANSPORT,
})
_SLICE_SECONDS = 0.05


class Producer:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._failures: list[str] = []
        self._lock = threading.Lock()
        self._lost_connection = False  # since the last acknowledged record
        self._producer = self._client()

    def _client(self) -> confluent_kafka.Producer:
        return confluent_kafka.Producer(producer_config(self.settings) | {"error_cb": self._on_error})

    def _on_error(self, error: confluent_kafka.KafkaError) -> None:
        if error.code() in _CONNECTION_LOST:
            self._lost_connection = True
        elif error.fatal():
            # A fatal error leaves the client unusable: the next stalled send rebuilds it.
            log.error("Kafka producer: fatal error %s", error.str())
            self._lost_connection = True

    def _acknowledged(self) -> None:
        self._lost_connection = False

    def send(self, topic: str, key: str | bytes | None, value: bytes, headers: list | None = None,
             on_delivery=None) -> None:
        while True:
            try:
                self._served(lambda producer: producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=on_delivery or self._on_delivery
                ))
                break
            except BufferError:
                # Local queue full: serve delivery reports until there is room.
                self._served(lambda producer: producer.poll(0.1))
        self._served(lambda producer: producer.poll(0))

    def publish(self, spec: TopicSpec, event: Envelope) -> None:
        """Encode ``event`` with its topic's contract and send it keyed by its document, on its lane."""
        self.send(self._topic_of(spec, event), event.key, spec.codec.encode(event))

    def publish_and_wait(self, spec: TopicSpec, event: Envelope, timeout: float | None = None) -> None:
        """Publish ``event`` and return once the broker acknowledged it; raise if it did not. A
        producer found stuck meanwhile is rebuilt and the record sent again through the new one (a
        copy may still land from the old one: records are idempotent by revision)."""
        timeout = timeout if timeout is not None else self.settings.kafka_ack_timeout_seconds
        deadline = time.monotonic() + timeout
        topic, value = self._topic_of(spec, event), spec.codec.encode(event)
        with _WAITED.time():
            while True:
                delivered = self._send_watched(topic, event.key, value)
                outcome = self._wait(delivered, deadline)
                if outcome != "rebuilt":
                    break
        if outcome == "timeout":
            raise DependencyUnavailable(f"Kafka did not acknowledge within {timeout:.0f}s")
        delivered.result()  # raises the delivery error, if any

    def _send_watched(self, topic: str, key: str, value: bytes) -> Future[None]:
        delivered: Future[None] = Future()

        def on_delivery(error: confluent_kafka.KafkaError | None, _message: confluent_kafka.Message) -> None:
            if error is None:
                self._acknowledged()
                delivered.set_result(None)
            else:
                delivered.set_exception(DependencyUnavailable(f"Kafka did not acknowledge: {error.str()}"))

        self.send(topic, key, value, on_delivery=on_delivery)
        return delivered

    def _wait(self, delivered: Future[None], deadline: float) -> str:
        """Serve delivery reports (ours or another thread's) until ``delivered`` is done: "done",
        "timeout", or "rebuilt" when the producer was found stuck and replaced."""
        started = time.monotonic()
        while not delivered.done():
            now = time.monotonic()
            if now >= deadline:
                return "timeout"
            if now - started >= self.settings.kafka_ack_stall_seconds and self._rebuild_if_stuck():
                if not delivered.done() or _failed(delivered):
                    return "rebuilt"
            self._served(lambda producer: producer.poll(_SLICE_SECONDS))
        return "done"

    def _rebuild_if_stuck(self) -> bool:
        """Replace the client if it lost its connection since the last acknowledgement and the
        cluster answers now: the broker is back, so nothing but the client keeps records waiting."""
        if not self._lost_connection or not self.broker_reachable():
            return False
        return self._rebuild(f"stuck after the broker came back (no acknowledgement for "
                             f"{self.settings.kafka_ack_stall_seconds:.0f}s)", self._producer)

    def _rebuild(self, why: str, broken: confluent_kafka.Producer) -> bool:
        with self._lock:
            if self._producer is not broken:
                return False  # another thread rebuilt it meanwhile
            self._producer = self._client()
            self._lost_connection = False
        log.warning("Kafka producer %s: rebuilt", why)
        PRODUCER_REBUILDS.inc()
        try:
            broken.purge()  # its records fail now (their callers redo them) instead of in 5 minutes
            broken.poll(0)  # serves the purged records' delivery reports
        except (confluent_kafka.KafkaException, SystemError):
            pass  # a client failed for good reports its records no more: the callers redo them anyway
        return True

    def _served(self, serve: Callable[[confluent_kafka.Producer], int | None]) -> int | None:
        """Call the current client. A fatal error (the broker refused the idempotent sequence, the
        producer id was fenced) leaves it unusable: it is rebuilt, and the caller told that its
        records were not acknowledged."""
        producer = self._producer
        try:
            return serve(producer)
        except confluent_kafka.KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if not isinstance(error, confluent_kafka.KafkaError) or not (
                error.fatal() or error.code() == confluent_kafka.KafkaError._FATAL  # produce() after one
            ):
                raise
            why = error.str()
        except SystemError as exc:
            # The C client failing mid-call after a fatal error ("returned NULL without setting an
            # exception", or a callback's exception left set).
            why = str(exc)
        self._rebuild(f"failed for good ({why})", producer)
        raise DependencyUnavailable(f"Kafka did not acknowledge: {why}")

    def _topic_of(self, spec: TopicSpec, event: Envelope) -> str:
        lane = spec.lane(event.priority if self.settings.lanes else Priority.INTERACTIVE)
        return self.settings.topic(lane.name)

    def _on_delivery(self, error: confluent_kafka.KafkaError | None, message: confluent_kafka.Message) -> None:
        if error is None:
            self._acknowledged()
        else:
            self._failures.append(f"{message.topic()}: {error.str()}")

    def broker_reachable(self, timeout: float = 2.0) -> bool:
        """The cluster answers a metadata request (a health check)."""
        try:
            self._producer.list_topics(timeout=timeout)
            return True
        except confluent_kafka.KafkaException:
            return False

    def flush(self, timeout: float | None = None) -> None:
        """Wait for every delivery report; raise if any record was not acknowledged (or the client
        was rebuilt meanwhile, failing what it held)."""
        timeout = timeout if timeout is not None else self.settings.kafka_ack_timeout_seconds
        deadline = time.monotonic() + timeout
        started = time.monotonic()
        with _WAITED.time():
            while remaining := self._served(
                lambda producer: producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))
            ):
                if time.monotonic() >= deadline:
                    break
                if time.monotonic() - started >= self.settings.kafka_ack_stall_seconds and self._rebuild_if_stuck():
                    self._failures.append(f"{remaining} records dropped with a stuck client")
                    remaining = 0
                    break
        failures, self._failures = self._failures, []
        if remaining:
            failures.append(f"{remaining} records not acknowledged within {timeout:.0f}s")
        if failures:
            raise DependencyUnavailable("Kafka did not acknowledge: " + "; ".join(failures[:3]))


def _failed(delivered: Future[None]) -> bool:
    return delivered.done() and delivered.exception() is not None
