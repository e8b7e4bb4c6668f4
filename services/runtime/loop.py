"""The consumer loop every service runs: take a batch, handle it, wait for acknowledgements,
commit. At-least-once: an offset is committed only after everything its record produced is
acknowledged, so a crash at any point replays uncommitted records and loses none.

Handling and flushing run on a helper thread while this thread keeps polling with the partitions
paused: a slow record (a long extraction, a slow bulk) never exceeds ``max.poll.interval.ms``, so
the consumer keeps its partitions instead of being evicted and having the work redone elsewhere.

Two lanes, each its own consumer group (services/runtime/lane.py): interactive records are served
first, and a bulk batch gives way between records as soon as an interactive one arrives; what it
finished is committed, the rest waits in the read-ahead. Within a lane, batches take the tenants
in turn (services/runtime/read_ahead.py), and a batch that has run for a while gives way the same
way to a tenant whose records arrived after it was taken: a batch is sized in records, and a
large tenant's batch of whole documents would otherwise hold a small tenant for all of them."""

from __future__ import annotations

import contextvars
import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from confluent_kafka import KafkaException, Message, TopicPartition

from schemas import MalformedRecord, Priority
from services.runtime.dead_letters import DeadLetters
from services.runtime.durability import state_durability
from services.runtime.errors import DependencyUnavailable, PermanentError, as_outage
from services.runtime.handler import Context, Handler
from services.runtime.heartbeat import Heartbeat
from services.runtime.lane import Lane
from services.runtime.logs import configure_logging, log_context, record_fields
from services.runtime.metrics import (
    BATCH_RECORDS, BATCH_SECONDS, OUTAGES, RECORD_SECONDS, RECORDS, RETRIES, STAGE_LATENCY, serve_metrics,
)
from services.runtime.producer import Producer
from services.runtime.redis_client import redis_client
from services.runtime.revisions import Revisions
from services.runtime.server_losses import record_loss
from services.runtime.settings import Settings
from services.runtime.status import StatusEmitter

log = logging.getLogger(__name__)

T = TypeVar("T")
# Work that finishes within this long runs without pausing the partitions (the common case).
_FAST_WORK_SECONDS = 1.0
# How often the interactive lane is looked at while bulk work runs.
_WATCH_SECONDS = 0.05
# How long an idle loop waits for an interactive record (a bulk one waits at most this long).
_IDLE_WAIT_SECONDS = 0.25
# How long a batch runs before it gives way to a tenant that arrived after it was taken: about
# what a newcomer waits, while batches that finish sooner are never cut short.
_TURN_SECONDS = 1.0
# How long a batch runs at most before what it finished is committed: batches are sized for
# small records, and a crash should redo seconds of work, not a batch of long extractions.
_BATCH_SECONDS = 5.0


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
        state = redis_client(settings)
        revisions = Revisions(state, settings.keys)
        self.dead_letters = DeadLetters(self.producer, status, revisions, handler_class.retractions_to)
        self.context = Context(settings, self.producer, status, revisions, self.dead_letters)
        self._give_up = self.dead_letters.send if handler_class.fails_documents else self.dead_letters.keep
        self.handler = handler_class(self.context)
        self.batch_size, self.batch_bytes = handler_class.batch_size, handler_class.batch_bytes
        self.stage = stage = handler_class.stage.value
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        self.max_backoff = max_backoff
        inputs = handler_class.inputs

        def records_lost() -> None:
            try:
                record_loss(state, settings.keys, "kafka")
            except Exception as exc:  # noqa: BLE001 - then the stall rule finds the documents, later
                if as_outage(exc) is None:
                    raise
                log.warning("lost records not reported (the watchdog's stall rule will find them): %s", exc)

        self.interactive = Lane(settings, Priority.INTERACTIVE, stage, inputs, records_lost)
        self.bulk = Lane(settings, Priority.BULK, stage, inputs, records_lost)
        self.lanes = tuple(lane for lane in (self.interactive, self.bulk) if lane.topics)
        self._serving: Lane | None = None
        self._worker = ThreadPoolExecutor(1, thread_name_prefix=f"{stage}-work")
        self._stopping = False
        self._outage_backoff = retry_backoff
        self.durability = state_durability(settings)
        self.heartbeat = Heartbeat(state, settings.keys, stage)

    def stop(self, *_: object) -> None:
        """Finish the batch in hand, commit it, leave the group."""
        self._stopping = True

    def run(self) -> None:
        for lane in self.lanes:
            lane.consumer.subscribe(
                lane.topics,
                on_assign=lambda _consumer, partitions, lane=lane: self._on_assign(lane, partitions),
                on_revoke=lambda _consumer, partitions, lane=lane: lane.revoked(partitions),
            )
            log.info("%s consuming %s as group %s", self.handler.__class__.__name__, lane.topics, lane.group_id)
        try:
            while not self._stopping:
                if self.heartbeat.beat():
                    for lane in self.lanes:
                        lane.report_lag()
                lane, batch = self._next_batch()
                if batch:
                    self._process(lane, batch)
        finally:
            self._worker.shutdown()
            self.heartbeat.stop()
            self.handler.close()
            for lane in self.lanes:
                lane.close()
            self.producer.flush()

    def _next_batch(self) -> tuple[Lane, list[Message]]:
        """Interactive records while any wait; bulk ones otherwise; when both lanes are idle, wait
        a moment for an interactive record. Every lane is read each time, so a bulk consumer kept
        waiting by a busy interactive lane still polls and stays in its group."""
        for lane in self.lanes:
            lane.read()
        for lane in self.lanes:
            if lane.queue:
                return lane, lane.queue.take(self.batch_size, self.batch_bytes)
        self.interactive.read(timeout=_IDLE_WAIT_SECONDS)
        return self.interactive, self.interactive.queue.take(self.batch_size, self.batch_bytes)

    def _process(self, lane: Lane, records: list[Message]) -> None:
        self._serving = lane
        self.context.give_way.clear()
        started = time.monotonic()
        self._prepare(records)
        run = _RecordRun(records)
        if not self._gives_way(lane, started):
            try:
                self._while_polling(lambda: self._handle_run(lane, run),
                                    watch=lambda: self._gives_way(lane, started) and run.stop.set())
            except DependencyUnavailable as exc:
                # Keep what finished before the outage, so it isn't redone.
                self._recover(lane, records, run.handled, exc)
                return
        handled = run.handled
        try:
            self._settle(lane, records[:handled])
        except DependencyUnavailable as exc:
            self._recover(lane, records, 0, exc)  # the batch's effects may be missing: redo all of it
            return
        self._outage_backoff = self.retry_backoff
        lane.queue.put_back(records[handled:])  # gave way: served in a later batch
        self._measure(lane, records[:handled], started)

    def _handle_run(self, lane: Lane, run: _RecordRun) -> None:
        """Handle the batch's records in order on the helper thread, one work item for them all (a
        hand-over per record costs more than a small record's work), until told to stop."""
        for message in run.records:
            if run.stop.is_set():
                return
            self._handle(lane, message)
            run.handled += 1

    def _measure(self, lane: Lane, committed: list[Message], started: float) -> None:
        if not committed:
            return
        labels = (self.stage, lane.priority.value)
        BATCH_SECONDS.labels(*labels).observe(time.monotonic() - started)
        BATCH_RECORDS.labels(*labels).observe(len(committed))
        now_ms = time.time() * 1000
        latency = STAGE_LATENCY.labels(*labels)
        for message in committed:
            kind, timestamp = message.timestamp()
            if kind and timestamp > 0:
                latency.observe(max(0.0, now_ms - timestamp) / 1000)

    def _gives_way(self, lane: Lane, started: float) -> bool:
        """Between records: whether the batch stops here, for an interactive record (a bulk batch)
        or, once it has run for ``_TURN_SECONDS``, for a newcomer tenant of its own lane, or once
        it has run for ``_BATCH_SECONDS``."""
        if lane is self.bulk and self._interactive_waiting():
            return True
        elapsed = time.monotonic() - started
        if elapsed < _TURN_SECONDS:
            return False
        if elapsed >= _BATCH_SECONDS:
            return True
        lane.read()
        return lane.queue.newcomer_waiting()

    def _interactive_waiting(self) -> bool:
        self.interactive.read()
        return bool(self.interactive.queue)

    def _prepare(self, records: list[Message]) -> None:
        try:
            self._while_polling(lambda: (self.handler.look_ahead(records), self.handler.prepare(records)))
        except Exception:  # noqa: BLE001 - each record is still handled, and fails there if it must
            log.warning("preparing the batch failed; its records are handled one by one", exc_info=True)

    def _recover(self, lane: Lane, records: list[Message], handled: int, outage: DependencyUnavailable) -> None:
        """Commit the first ``handled`` records if their effects can still be made durable, put the
        rest back to be handled again, back off."""
        log.warning("dependency unavailable, will retry from the first unfinished record: %s", outage)
        OUTAGES.labels(self.stage).inc()
        if handled:
            try:
                self._settle(lane, records[:handled])
            except DependencyUnavailable:
                handled = 0
        lane.queue.put_back(records[handled:])
        self._pause_for(outage.retry_after or self._outage_backoff)
        self._outage_backoff = min(self._outage_backoff * 2, self.max_backoff)

    def _settle(self, lane: Lane, handled: list[Message]) -> None:
        """Make the handled records' effects durable, then commit their offsets."""
        try:
            self._while_polling(self.handler.flush)
        except DependencyUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - batch-wide: no single record to blame, so redo it
            outage = as_outage(exc)
            if outage is None:
                log.exception("flush failed; the whole batch will be redone after a pause")
                outage = DependencyUnavailable(f"flush failed: {type(exc).__name__}: {exc}")
            raise outage from exc
        self.producer.flush()
        if handled:
            self._state_durable()
        if offsets := lane.queue.finish(handled):
            lane.commit(offsets)

    def _state_durable(self) -> None:
        """The state Redis's writes made durable before offsets that rely on them are committed: a
        Redis host failure must not leave a committed record whose revision gate, registry entry or
        serving record is gone (services/runtime/durability.py)."""
        try:
            self.durability.wait()
        except Exception as exc:
            if (outage := as_outage(exc)) is None:
                raise
            raise outage from exc

    def _while_polling(self, work: Callable[[], T], watch: Callable[[], object] = lambda: None) -> T:
        """Run ``work`` on the helper thread. If it takes long, pause the partitions and keep
        polling meanwhile: the group keeps this consumer, and no record is fetched. While a bulk
        batch runs, the interactive lane is watched throughout; a record arriving there raises
        ``give_way`` for the handler (see Context). ``watch`` is called on this thread as often."""
        future = self._worker.submit(contextvars.copy_context().run, work)  # the record's log fields
        started = time.monotonic()
        paused = False
        try:
            while True:
                try:
                    return future.result(timeout=_WATCH_SECONDS)
                except FutureTimeout:
                    pass
                if self._serving is self.bulk and self._interactive_waiting():
                    self.context.give_way.set()
                watch()
                if not paused and time.monotonic() - started >= _FAST_WORK_SECONDS:
                    self._pause_all(watching=self._serving is self.bulk)
                    paused = True
                if paused:
                    self._poll_paused()
        finally:
            if paused:
                self._resume_all()

    def _pause_all(self, watching: bool = False) -> None:
        """Pause every lane's partitions; ``watching`` leaves the interactive lane fetching."""
        for lane in self.lanes:
            if not (watching and lane is self.interactive):
                lane.pause()

    def _resume_all(self) -> None:
        for lane in self.lanes:
            lane.resume()

    def _poll_paused(self) -> None:
        """Keep every lane in its group; records of partitions assigned meanwhile wait in the
        read-ahead like any other."""
        self.heartbeat.beat()
        for lane in self.lanes:
            lane.read()

    def _handle(self, lane: Lane, message: Message) -> None:
        with log_context(**record_fields(message.key())), RECORD_SECONDS.labels(self.stage).time():
            outcome = self._attempts(message)
        RECORDS.labels(self.stage, lane.priority.value, outcome).inc()

    def _attempts(self, message: Message) -> str:
        """Handle the record, retrying what may pass on another try; its outcome."""
        attempt = 0
        while True:
            attempt += 1
            try:
                self.handler.handle(message)
                return "handled"
            except DependencyUnavailable:
                raise
            except (MalformedRecord, PermanentError) as exc:
                return self._dead_letter(message, exc, attempt)
            except Exception as exc:  # noqa: BLE001 - an unexpected failure costs one record, not the service
                if (outage := as_outage(exc)) is not None:
                    raise outage from exc
                if attempt == self.max_attempts:
                    log.exception("giving up on %s[%d]@%d", message.topic(), message.partition(), message.offset())
                    return self._dead_letter(message, exc, attempt)
                log.warning("attempt %d failed (%s), retrying", attempt, exc)
                RETRIES.labels(self.stage).inc()
                time.sleep(self.retry_backoff * 2 ** (attempt - 1))

    def _dead_letter(self, message: Message, exc: Exception, attempt: int) -> str:
        self._give_up(message, exc, attempt)
        return "dead_lettered"

    def _pause_for(self, seconds: float) -> None:
        """Back off without blocking the poll loop: pause every partition and keep polling, so the
        consumer stays in its group (max.poll.interval.ms) while no record is fetched."""
        self._pause_all()
        deadline = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < deadline:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
            self._poll_paused()
        self._resume_all()

    def _on_assign(self, lane: Lane, partitions: list[TopicPartition]) -> None:
        """Say so, loudly, when retention deleted records this group had not processed yet: the
        committed offset lies below the partition's first offset, and the consumer is about to jump
        over them. The documents they carried stay unfinished until the watchdog re-drives them."""
        consumer = lane.consumer
        try:
            committed = consumer.committed(partitions, timeout=10)
        except KafkaException as exc:
            log.warning("could not read committed offsets at assignment: %s", exc)
            return
        lane.assigned(committed)
        for tp in committed:
            if tp.offset < 0:
                continue  # nothing committed yet: the group starts at the beginning
            try:
                low, _ = consumer.get_watermark_offsets(tp, timeout=10, cached=False)
            except KafkaException as exc:
                log.warning("could not read the first offset of %s[%d]: %s", tp.topic, tp.partition, exc)
                continue
            if (lost := skipped_by_retention(tp.offset, low)) is not None:
                log.error(
                    "%s[%d]: records %d..%d were deleted by retention before %s processed them; "
                    "their documents will be re-driven by the watchdog",
                    tp.topic, tp.partition, lost[0], lost[1], lane.group_id,
                )


class _RecordRun:
    """A batch's records as the helper thread handles them: how many it finished, and the flag the
    polling thread raises when the batch should give way after the record in hand."""

    def __init__(self, records: list[Message]):
        self.records = records
        self.handled = 0
        self.stop = threading.Event()


def skipped_by_retention(committed: int, first_available: int) -> tuple[int, int] | None:
    """The offsets (first, last) a consumer committed at ``committed`` would jump over when the
    partition now starts at ``first_available``; None when nothing is lost."""
    if 0 <= committed < first_available:
        return committed, first_available - 1
    return None


def run_handler(handler_class: type[Handler], settings: Settings | None = None) -> None:
    """Entry point of a service process."""
    settings = settings or Settings()
    configure_logging(settings, handler_class.stage.value)
    serve_metrics(settings)
    loop = ConsumerLoop(settings, handler_class)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, loop.stop)
    loop.run()
