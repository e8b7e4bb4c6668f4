"""The embedded stack on its own ports: start, start again, stop with nothing left behind, and
clear errors when a port is taken or a server dies at start."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest
from redis.cluster import RedisCluster

from deploy.probes import free_cluster_ports
from deploy.stack import Component, Stack, StackError
from services.runtime.settings import Settings
from tests.conftest import stack_env


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def own_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name, value in stack_env(tmp_path / "state").items():
        monkeypatch.setenv(name, value)
    stack = Stack(Settings())
    yield stack
    stack.down()


def test_up_twice_then_down_leaves_no_process(own_stack: Stack):
    first = own_stack.up()
    assert [s.name for s in first] == ["kafka", "elasticsearch", "redis", "redis-cache"]
    assert all(s.healthy for s in first)

    second = own_stack.up()
    assert [s.pid for s in second] == [s.pid for s in first], "a second up must not start anything"
    assert all(s.healthy for s in own_stack.status())

    assert own_stack.down() == ["redis-cache", "redis", "elasticsearch", "kafka"]
    assert all(gone(s.pid) for s in first)
    assert [s.problem for s in own_stack.status()] == ["not running"] * 4
    assert list((own_stack.state_dir / "run").glob("*.pid")) == []
    assert own_stack.down() == []


def test_taken_port_is_a_clear_error_and_nothing_is_left_running(own_stack: Stack):
    port = own_stack.settings.elasticsearch_port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(StackError) as caught:
            own_stack.up()
    message = str(caught.value)
    assert f"port 127.0.0.1:{port} is already in use" in message
    assert "INDEXFLOW_ELASTICSEARCH_PORT" in message
    assert all(s.pid is None for s in own_stack.status()), "kafka, started first, must be stopped again"


def test_crash_at_start_shows_the_log_tail(own_stack: Stack):
    crashing = Component(
        "broken",
        own_stack.settings.redis_port,
        lambda: ["sh", "-c", "echo 'FATAL: cannot open data directory' >&2; exit 3"],
        lambda: "port closed",
    )
    own_stack.components = [own_stack.components[0], crashing]
    with pytest.raises(StackError) as caught:
        own_stack.up()
    message = str(caught.value)
    assert "broken exited at start (exit code 3)" in message
    assert "FATAL: cannot open data directory" in message
    assert own_stack.status()[0].pid is None


def test_an_address_beyond_loopback_is_refused_before_anything_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # The embedded servers have no authentication: on an address others reach, anyone could read
    # and write every tenant's data. 192.0.2.10 (TEST-NET-1) is never this machine's: nothing binds.
    for name, value in stack_env(tmp_path / "state").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("INDEXFLOW_HOST", "192.0.2.10")
    stack = Stack(Settings())
    with pytest.raises(StackError, match="loopback"):
        stack.up()
    assert all(s.pid is None for s in stack.status())


def test_missing_binary_is_named(own_stack: Stack, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    own_stack.components = [c for c in own_stack.components if c.name == "redis"]
    with pytest.raises(StackError, match="redis-server not found: apt-get install redis-server"):
        own_stack.up()


def test_durable_mode_keeps_topics_records_and_offsets_across_a_restart(
    own_stack: Stack, monkeypatch: pytest.MonkeyPatch
):
    from confluent_kafka import Consumer, TopicPartition

    from services.runtime.kafka import admin_client
    from tests.support.kafka import committed, produce, read_topic
    from topics import TOPICS, apply_topics

    monkeypatch.setenv("INDEXFLOW_KAFKA_STORAGE", "s3")
    settings = Settings()
    stack = Stack(settings)
    try:
        assert [s.name for s in stack.up()] == ["bucket", "kafka", "elasticsearch", "redis", "redis-cache"]
        assert apply_topics(admin_client(settings), TOPICS, settings).ok
        topic = settings.topic("documents")
        placed = produce(settings, topic, [(b"acme/d1", b"kept")])
        consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": "g"})
        consumer.commit(offsets=[TopicPartition(topic, placed[0][0], 1)], asynchronous=False)
        consumer.close()

        stack.down()
        stack.up()

        report = apply_topics(admin_client(settings), TOPICS, settings)
        assert report.created == [] and report.ok
        [record] = read_topic(settings, topic, until=lambda ms: len(ms) == 1, timeout=20)
        assert record.value() == b"kept"
        assert committed(settings, "g", topic, 6)[placed[0][0]] == 1
    finally:
        stack.down()


def test_an_embedded_redis_cluster_is_formed_once_and_a_master_started_again_rejoins_with_its_keys(
    stack_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
):
    for name, value in stack_env(tmp_path / "state").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("INDEXFLOW_REDIS_CLUSTER", "true")
    monkeypatch.setenv("INDEXFLOW_REDIS_PORT", str(free_cluster_ports("127.0.0.1", 3) + 2))  # and the two below
    # The session's broker and Elasticsearch: this stack starts its Redis servers only
    monkeypatch.setenv("INDEXFLOW_KAFKA_BOOTSTRAP_SERVERS", stack_settings.kafka_bootstrap_servers)
    monkeypatch.setenv("INDEXFLOW_ELASTICSEARCH_URL", stack_settings.elasticsearch_url)
    settings = Settings()
    stack = Stack(settings)
    try:
        started = [s for s in stack.up() if s.port is not None]
        assert [s.name for s in started] == ["redis", "redis-2", "redis-3", "redis-cache"]
        client = RedisCluster.from_url(settings.redis_url)
        tenants = [f"tenant-{n}" for n in range(12)]
        for tenant in tenants:
            client.hset(settings.keys.states(tenant), f"{tenant}/d", "{}")
        assert len({client.get_node_from_key(settings.keys.states(t)).port for t in tenants}) == 3

        os.kill(started[0].pid, signal.SIGKILL)
        time.sleep(1)  # its port closed
        again = {s.name: s.pid for s in stack.up()}
        assert again["redis"] != started[0].pid and again["redis-2"] == started[1].pid  # the killed one only
        assert all(client.hget(settings.keys.states(t), f"{t}/d") == b"{}" for t in tenants)  # fsynced, rejoined
        client.close()
    finally:
        stack.down()
