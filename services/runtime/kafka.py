"""librdkafka configuration shared by every client, from the settings."""

from __future__ import annotations

from typing import Any

from confluent_kafka.admin import AdminClient

from services.runtime.settings import Settings


def common_config(settings: Settings) -> dict[str, Any]:
    return {"bootstrap.servers": settings.kafka_bootstrap_servers}


def producer_config(settings: Settings) -> dict[str, Any]:
    return {
        **common_config(settings),
        # Idempotent: a retried send never duplicates or reorders a document's records.
        "enable.idempotence": True,
        "acks": "all",
        # Java's partitioner (murmur2), the one Java, kafkajs and Kafka Streams producers use: a
        # document key lands on the same partition whoever publishes it, so an upstream Java
        # producer's upsert and our gateway's delete of one document stay in order.
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "compression.type": "lz4",
    }


def consumer_config(settings: Settings, group_id: str) -> dict[str, Any]:
    return {
        **common_config(settings),
        "group.id": group_id,
        "enable.auto.commit": False,  # offsets are committed only after a batch's effects are acknowledged
        "auto.offset.reset": "earliest",
        "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": max(500, settings.session_timeout_ms // 3),
        "max.poll.interval.ms": settings.max_poll_interval_ms,
        "partition.assignment.strategy": "range",
    }


def admin_client(settings: Settings) -> AdminClient:
    return AdminClient(common_config(settings))
