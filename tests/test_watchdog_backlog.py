"""A document waiting its turn behind a backlog is not stuck: the watchdog leaves it alone while
the stage ahead of it still has records from before and keeps moving through them, and judges it
as soon as that stage stops moving. (Own topics, no services: the test moves the group itself.)"""

from __future__ import annotations

from datetime import timedelta

from confluent_kafka import Consumer, TopicPartition

from schemas import DocumentUpserted, InlineSource, document_key
from services.runtime.kafka import consumer_config, partition_of
from services.runtime.producer import Producer
from services.runtime.settings import Settings
from services.watchdog.service import build
from services.watchdog.settings import WatchdogSettings
from topics.catalog import DOCUMENTS


def upsert(key_id: str, revision: int) -> DocumentUpserted:
    return DocumentUpserted(
        tenant_id="backlog", dataset_id="ds", document_id=key_id, revision=revision, name=f"{key_id}.txt",
        source=InlineSource(text="queued text"),
    )


def test_partition_of_matches_where_the_producer_puts_a_key(pipeline_topics: Settings):
    settings = pipeline_topics
    producer = Producer(settings)
    placed = {}

    def on_delivery(error, message):
        placed[message.key().decode()] = message.partition()

    keys = [document_key("t", f"doc-{n}") for n in range(40)]
    for key in keys:
        producer.send(settings.topic(DOCUMENTS.name), key, b"{}", on_delivery=on_delivery)
    producer.flush()
    assert placed == {key: partition_of(key, settings.partitions) for key in keys}


def test_a_document_behind_a_moving_backlog_waits_and_one_behind_a_stalled_stage_is_redriven(
    pipeline_topics: Settings,
):
    settings = pipeline_topics
    watchdog = build(settings, WatchdogSettings(stall_seconds=1.0, max_attempts=3))
    producer = Producer(settings)
    key = document_key("backlog", "queued")
    for n in range(3):  # other work ahead of it, in its partition
        producer.publish(DOCUMENTS, upsert("queued", revision=1).model_copy(update={"name": f"ahead-{n}.txt"}))
    document = upsert("queued", revision=watchdog.sweep.revisions.next_revision(key))
    watchdog.sweep.registry.remember(document)
    producer.publish(DOCUMENTS, document)
    producer.flush()

    start = document.produced_at + timedelta(seconds=5)
    first = watchdog.sweep.sweep(start)
    assert key in first.queued and key not in first.redriven

    # The extractor's group moves through the backlog (but has not reached the document yet).
    partition = partition_of(key, settings.partitions)
    group = Consumer(consumer_config(settings, f"{settings.topic_prefix}extractor"))
    group.commit(offsets=[TopicPartition(settings.topic(DOCUMENTS.name), partition, 2)], asynchronous=False)
    moving = watchdog.sweep.sweep(start + timedelta(seconds=10))
    assert key in moving.queued and key not in moving.redriven

    # Then it stops moving: the document is judged stuck and re-driven.
    stalled = watchdog.sweep.sweep(start + timedelta(seconds=20))
    assert key in stalled.redriven and key not in stalled.queued
    group.close()
    watchdog.close()
