"""Faults the consumer loop must ride out without losing its place, on the real broker: raw client
errors raised while flushing (servers restarting) back off like outages instead of ending the
process, and a record that takes longer than max.poll.interval.ms does not get the consumer evicted."""

from __future__ import annotations

import threading
import time
from collections import Counter

import elastic_transport
import redis

import schemas
from schemas import Stage
from services.runtime.handler import Handler
from services.runtime.loop import ConsumerLoop, skipped_by_retention
from services.runtime.settings import Settings
from tests.support.kafka import committed, produce
from tests.test_runtime_errors import FlakySink, upsert
from topics.catalog import DOCUMENTS

RAW_FAILURES = [
    elastic_transport.ConnectionError("connection refused"),
    redis.ConnectionError("Connection reset by peer"),
    redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
    redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
]


class RestartingServers(FlakySink):
    """Its first flushes fail the way client libraries do when a server restarts."""

    failures = RAW_FAILURES
    written: list[str] = []
    flushes = 0


def run_until(loop: ConsumerLoop, done, timeout: float = 60.0) -> threading.Thread:
    worker = threading.Thread(target=loop.run)
    worker.start()
    deadline = time.monotonic() + timeout
    try:
        while not done() and time.monotonic() < deadline and worker.is_alive():
            time.sleep(0.1)
    finally:
        loop.stop()
        worker.join(timeout=60)
    return worker


def test_client_errors_raised_by_flush_are_waited_out(pipeline_topics: Settings):
    settings = pipeline_topics
    placed = produce(settings, settings.topic(DOCUMENTS.name), [(b"acme/f", upsert(f"n{i}", f"d{i}")) for i in range(4)])
    loop = ConsumerLoop(settings, RestartingServers, retry_backoff=0.05, max_backoff=0.2)
    worker = run_until(loop, lambda: len(RestartingServers.written) >= 4)
    assert not worker.is_alive()
    assert RestartingServers.written == [f"n{i}" for i in range(4)]
    assert RestartingServers.flushes > len(RAW_FAILURES)
    group = f"{settings.topic_prefix}{Stage.INDEXER.value}"
    [partition] = {p for p, _ in placed}
    assert committed(settings, group, settings.topic(DOCUMENTS.name), 6)[partition] == placed[-1][1] + 1


class SlowExtraction(Handler):
    stage = Stage.EXTRACTOR
    inputs = (DOCUMENTS,)
    batch_size = 4
    handled: Counter = Counter()

    def handle(self, message):
        name = schemas.DOCUMENT_EVENTS.decode(message.value()).name
        if name == "slow":
            time.sleep(10)  # longer than max.poll.interval.ms below
        SlowExtraction.handled[name] += 1


def test_a_record_slower_than_the_poll_interval_keeps_the_consumer_in_its_group(pipeline_topics: Settings):
    settings = pipeline_topics.model_copy(update={"max_poll_interval_ms": 7000})
    names = ["slow", "after-1", "after-2"]
    placed = produce(settings, settings.topic(DOCUMENTS.name), [(b"acme/s", upsert(n, f"s{i}")) for i, n in enumerate(names)])
    loop = ConsumerLoop(settings, SlowExtraction)
    worker = run_until(loop, lambda: sum(SlowExtraction.handled.values()) >= 3, timeout=90)
    assert not worker.is_alive()
    # Evicted, the consumer would have lost the partition and its commit, and redone the work.
    assert SlowExtraction.handled == Counter({n: 1 for n in names})
    group = f"{settings.topic_prefix}{Stage.EXTRACTOR.value}"
    [partition] = {p for p, _ in placed}
    assert committed(settings, group, settings.topic(DOCUMENTS.name), 6)[partition] == placed[-1][1] + 1


def test_records_deleted_by_retention_before_processing_are_named():
    assert skipped_by_retention(committed=120, first_available=500) == (120, 499)
    assert skipped_by_retention(committed=500, first_available=500) is None
    assert skipped_by_retention(committed=-1001, first_available=500) is None  # nothing committed yet
