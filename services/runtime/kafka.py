"""librdkafka configuration shared by every client, from the settings."""

from __future__ import annotations

from typing import Any

from aiokafka.partitioner import murmur2
from confluent_kafka.admin import AdminClient

from services.runtime.settings import Settings


def common_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "security.protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_sasl_mechanism:
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
        config["sasl.username"] = settings.kafka_sasl_username
        config["sasl.password"] = settings.kafka_sasl_password.get_secret_value()
    for key, path in (
        ("ssl.ca.location", settings.kafka_ssl_ca_location),
        ("ssl.certificate.location", settings.kafka_ssl_certificate_location),
        ("ssl.key.location", settings.kafka_ssl_key_location),
    ):
        if path:
            config[key] = str(path)
    return config


def producer_config(settings: Settings) -> dict[str, Any]:
    return {
        **common_config(settings),
        # Idempotent: a retried send never duplicates or reorders a document's records. Without it
        # (settings.kafka_idempotence), one request in flight keeps a retry from reordering them.
        "enable.idempotence": settings.kafka_idempotence,
        **({} if settings.kafka_idempotence else {"max.in.flight.requests.per.connection": 1}),
        "acks": "all",
        # Java's partitioner (murmur2), the one Java, kafkajs and Kafka Streams producers use: a
        # document key lands on the same partition whoever publishes it, so an upstream Java
        # producer's upsert and our gateway's delete of one document stay in order.
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "compression.type": "lz4",
        # A missing topic (lost with a broker, never applied) is never made with the broker's
        # defaults by a send: librdkafka's producers would ask for it unless told not to.
        "allow.auto.create.topics": False,
    }


def consumer_config(settings: Settings, group_id: str) -> dict[str, Any]:
    config = {
        **common_config(settings),
        "group.id": group_id,
        "enable.auto.commit": False,  # offsets are committed only after a batch's effects are acknowledged
        "auto.offset.reset": "earliest",
        # A missing topic waits for `indexflow topics apply`; never made with the broker's defaults.
        "allow.auto.create.topics": False,
        "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": max(500, settings.session_timeout_ms // 3),
        "max.poll.interval.ms": settings.max_poll_interval_ms,
        # Incremental rebalances (cooperative-sticky, unless set otherwise): a replica joining or
        # leaving moves only the partitions that change owner; the others keep working (an eager
        # "range" rebalance revokes every member's).
        "partition.assignment.strategy": settings.kafka_assignment_strategy,
    }
    if settings.instance_id and settings.kafka_static_membership:
        # Static membership: a replica restarting within the session timeout gets its partitions
        # back without a rebalance (one id per replica; the lanes' groups differ, so it is shared).
        config["group.instance.id"] = settings.instance_id
    return config


def admin_client(settings: Settings) -> AdminClient:
    return AdminClient(common_config(settings))


def partition_of(key: str, partitions: int) -> int:
    """The partition a key lands on: murmur2 as the producers hash (``murmur2_random``, Java's)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions
