"""Writes to the state Redis are durable before anything relies on them, on real servers started
here: Valkey 8 (WAITAOF, as Redis 7.2) and Debian's Redis 7.0 (a replica, or `appendfsync always`).
A SIGKILL alone cannot show a lost write (the AOF is written before Redis answers and the page
cache survives the process); what a host failure loses is argued in docs/delivery.md."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import httpx
import pytest

from schemas import Stage
from services.runtime.durability import Durability, DurabilityBarrier, NotDurable, state_durability
from services.runtime.handler import Handler
from services.runtime.loop import ConsumerLoop
from services.runtime.keys import RedisKeys
from services.runtime.redis_client import redis_client
from services.runtime.settings import Settings
from tests.support.gateway import extra_gateway
from tests.support.kafka import committed, produce
from tests.support.redis_servers import RedisClusterOfThree, RedisServer, valkey_server, wait_for_replica
from tests.test_runtime_errors import upsert
from topics.catalog import DOCUMENTS

EVERYSEC = ("--appendonly", "yes", "--appendfsync", "everysec")
MARK = RedisKeys("t.").durability_mark


@pytest.fixture
def servers():
    started: list[RedisServer] = []

    def start(directory: Path, *options: str, **kwargs) -> RedisServer:
        started.append(RedisServer(directory, *options, **kwargs).start())
        return started[-1]

    yield start
    for server in started:
        server.stop()


def test_the_embedded_state_redis_fsyncs_every_write(stack_settings: Settings):
    # Debian's Redis 7.0 has no WAITAOF, and the embedded stack no replica.
    assert redis_client(stack_settings).config_get("appendfsync") == {"appendfsync": "always"}
    assert state_durability(stack_settings).mode() is Durability.FSYNC_ALWAYS


def test_waitaof_confirms_the_local_fsync_and_the_writes_survive_a_kill(servers, tmp_path: Path):
    server = servers(tmp_path / "valkey", *EVERYSEC, binary=valkey_server())
    client = server.client()
    barrier = DurabilityBarrier(client, MARK)
    assert barrier.mode() is Durability.WAITAOF
    for i in range(100):
        client.hset("api-keys", f"k{i}", i)  # on pool connections other than the barrier's
    barrier.wait()
    assert client.info("commandstats")["cmdstat_waitaof"]["calls"] == 1
    server.kill()
    server.start()
    assert server.client().hlen("api-keys") == 100


def test_on_a_cluster_every_master_confirms_the_writes_it_holds(tmp_path: Path):
    """WAITAOF covers the writes of the server it is sent to: on a cluster, each master's writes are
    made durable there, after a marker of the barrier's on that master."""
    cluster = RedisClusterOfThree(tmp_path, *EVERYSEC, binary=valkey_server()).start()
    try:
        client = cluster.client()
        barrier = DurabilityBarrier(client, MARK)
        assert barrier.mode() is Durability.WAITAOF
        keys = RedisKeys("t.")
        for n in range(30):  # tenants on every master
            client.hset(keys.states(f"tenant-{n}"), f"tenant-{n}/d", "{}")
        barrier.wait()
        for server in cluster.servers:
            assert server.client().info("commandstats")["cmdstat_waitaof"]["calls"] == 1, server.port
        client.close()
    finally:
        cluster.stop()


def test_a_replica_confirms_the_writes_or_the_barrier_refuses(servers, tmp_path: Path):
    primary = servers(tmp_path / "primary", *EVERYSEC)
    replica = servers(tmp_path / "replica", "--replicaof", "127.0.0.1", str(primary.port))
    wait_for_replica(primary.client())
    client = primary.client()
    barrier = DurabilityBarrier(client, MARK)
    assert barrier.mode() is Durability.REPLICA
    client.hset("datasets:acme", "d1", "settings")
    barrier.wait()
    assert replica.client().hget("datasets:acme", "d1") == b"settings"
    replica.pause()
    client.hset("datasets:acme", "d2", "settings")
    with pytest.raises(NotDurable):
        DurabilityBarrier(client, MARK, timeout_ms=300).wait()
    replica.resume()
    barrier.wait()
    assert replica.client().hget("datasets:acme", "d2") == b"settings"


def test_a_server_that_cannot_make_writes_durable_is_reported(servers, tmp_path: Path, caplog):
    server = servers(tmp_path / "everysec", *EVERYSEC)
    barrier = DurabilityBarrier(server.client(), MARK)
    with caplog.at_level(logging.ERROR):
        assert barrier.mode() is Durability.NONE
        barrier.wait()
    assert "can lose writes already acknowledged" in caplog.text
    always = servers(tmp_path / "always", "--appendonly", "yes", "--appendfsync", "always")
    assert DurabilityBarrier(always.client(), MARK).mode() is Durability.FSYNC_ALWAYS


class RecordsNames(Handler):
    stage = Stage.INDEXER
    inputs = (DOCUMENTS,)
    batch_size = 10
    handled: list[str] = []

    def handle(self, message):
        RecordsNames.handled.append(message.key().decode())


def test_a_stage_commits_only_once_its_redis_writes_are_durable(pipeline_topics: Settings, servers, tmp_path: Path):
    primary = servers(tmp_path / "primary", *EVERYSEC)
    replica = servers(tmp_path / "replica", "--replicaof", "127.0.0.1", str(primary.port))
    wait_for_replica(primary.client())
    settings = pipeline_topics.model_copy(update={"redis_url": primary.url})
    loop = ConsumerLoop(settings, RecordsNames, retry_backoff=0.05, max_backoff=0.2)
    loop.durability = DurabilityBarrier(redis_client(settings), settings.keys.durability_mark, timeout_ms=300)
    replica.pause()
    placed = produce(settings, settings.topic(DOCUMENTS.name), [(b"acme/a", upsert("a", "d1"))])
    group = f"{settings.topic_prefix}{Stage.INDEXER.value}"
    worker = threading.Thread(target=loop.run)
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while "acme/a" not in RecordsNames.handled:
            assert time.monotonic() < deadline, "the record was never handled"
            time.sleep(0.1)
        time.sleep(1.5)  # several barriers time out meanwhile
        [(partition, offset)] = placed
        assert committed(settings, group, settings.topic(DOCUMENTS.name), 6)[partition] < 0
        replica.resume()
        while committed(settings, group, settings.topic(DOCUMENTS.name), 6)[partition] != offset + 1:
            assert time.monotonic() < deadline, "never committed once the replica was back"
            time.sleep(0.2)
    finally:
        loop.stop()
        worker.join(timeout=60)


def test_the_gateway_answers_a_write_once_it_is_durable(stack_settings: Settings, servers, tmp_path: Path):
    primary = servers(tmp_path / "primary", *EVERYSEC)
    replica = servers(tmp_path / "replica", "--replicaof", "127.0.0.1", str(primary.port))
    wait_for_replica(primary.client())
    tenant = {"X-Tenant-Id": "durable"}
    with extra_gateway(INDEXFLOW_REDIS_URL=primary.url, INDEXFLOW_AUTH="open") as url:
        replica.pause()
        refused = httpx.post(f"{url}/v1/datasets", json={"name": "unconfirmed"}, headers=tenant, timeout=30)
        assert refused.status_code == 503, refused.text
        assert refused.json()["code"] == "service_unavailable" and refused.headers["Retry-After"] == "1"
        assert httpx.get(f"{url}/v1/datasets", headers=tenant, timeout=30).status_code == 200  # reads go on
        replica.resume()
        created = httpx.post(f"{url}/v1/datasets", json={"name": "confirmed"}, headers=tenant, timeout=30)
        assert created.status_code == 200, created.text
    # The gateway's namespace is the environment's (the session's pipeline may have set its prefix).
    assert replica.client().hlen(Settings().keys.datasets("durable")) == 2
