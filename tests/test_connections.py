"""Connection security: every client takes the deployment's credentials from the one settings tree.

The embedded broker and Elasticsearch API run without authentication, so Kafka's settings are
checked by librdkafka itself (it refuses unknown or inconsistent properties and unreadable
certificates) and Redis's against a real password-protected redis-server."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
import redis
from confluent_kafka import KafkaException, Producer
from pydantic import ValidationError

from services.runtime.elasticsearch_client import elasticsearch_client
from services.runtime.kafka import common_config, consumer_config, producer_config
from services.runtime.redis_client import redis_client
from services.runtime.settings import Settings
from tests.conftest import free_port


def test_kafka_sasl_ssl_reaches_librdkafka(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate")
    settings = Settings(
        kafka_bootstrap_servers="127.0.0.1:1",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="indexflow",
        kafka_sasl_password="s3cret",
        kafka_ssl_ca_location=ca,
    )
    config = producer_config(settings)
    assert config["sasl.password"] == "s3cret" and config["security.protocol"] == "SASL_SSL"
    assert "s3cret" not in repr(settings), "secrets never reach a log line"
    # librdkafka reads the CA when the client is built: a bad one fails here, not at the first send.
    with pytest.raises(KafkaException, match="ssl.ca.location"):
        Producer(config)


def test_plaintext_is_the_embedded_default():
    settings = Settings()
    assert common_config(settings)["security.protocol"] == "PLAINTEXT"
    assert settings.session_timeout_ms == 6000
    assert settings.auth == "open"
    production = Settings(kafka_bootstrap_servers="kafka:9092")
    assert production.session_timeout_ms == 45_000 and production.auth == "api_keys", "closed unless said otherwise"


@pytest.mark.parametrize(
    "bad",
    [
        {"kafka_security_protocol": "SASL_SSL"},  # no mechanism or credentials
        {"elasticsearch_username": "elastic"},  # no password
        {"kafka_ssl_ca_location": "/nonexistent/ca.pem"},
        {"replication_factor": 1, "min_insync_replicas": 2},
    ],
)
def test_inconsistent_security_settings_are_refused(bad):
    with pytest.raises(ValidationError):
        Settings(**bad)


def test_elasticsearch_credentials_are_sent():
    keyed = elasticsearch_client(Settings(elasticsearch_api_key="a2V5"))
    assert keyed._headers["authorization"] == "ApiKey a2V5"
    basic = elasticsearch_client(Settings(elasticsearch_username="elastic", elasticsearch_password="pw"))
    assert basic._headers["authorization"].startswith("Basic ")


@pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server not installed")
def test_redis_password_from_the_url(tmp_path):
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--requirepass", "s3cret",
         "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        secured = Settings(redis_url=f"redis://:s3cret@127.0.0.1:{port}/0")
        deadline = time.monotonic() + 10
        while True:
            try:
                assert redis_client(secured).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with pytest.raises(redis.AuthenticationError):
            redis_client(Settings(redis_url=f"redis://127.0.0.1:{port}/0")).ping()
    finally:
        server.terminate()
        server.wait()


def test_a_cluster_gets_incremental_rebalances_static_members_and_idempotence_the_memory_broker_not():
    cluster = Settings(kafka_bootstrap_servers="kafka-1:9092", instance_id="indexer-7d9f")
    consumer = consumer_config(cluster, "g")
    assert consumer["partition.assignment.strategy"] == "cooperative-sticky"
    assert consumer["group.instance.id"] == "indexer-7d9f"
    assert producer_config(cluster)["enable.idempotence"] is True

    embedded = Settings(instance_id="indexer", kafka_storage="memory")
    consumer = consumer_config(embedded, "g")
    assert consumer["partition.assignment.strategy"] == "range" and "group.instance.id" not in consumer
    producer = producer_config(embedded)
    assert producer["enable.idempotence"] is False and producer["max.in.flight.requests.per.connection"] == 1
    assert producer_config(Settings(kafka_storage="s3"))["enable.idempotence"] is True
