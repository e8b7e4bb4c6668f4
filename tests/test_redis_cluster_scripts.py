"""Every script and transaction that names several state keys runs on Redis Cluster, which refuses
one whose keys hash to different slots (CROSSSLOT): a real three-master cluster of Debian's
redis-server on loopback ports, reached through redis-py's RedisCluster."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from redis.cluster import RedisCluster

from schemas import DocumentStatus, DocumentUpserted, InlineSource, Stage, StatusEvent
from services.gateway.datasets import DatasetCatalog
from services.gateway.visibility import DocumentVisibility
from services.projector.store import StateStore
from services.runtime.key_migration import tag_keys
from services.runtime.keys import RedisKeys
from services.runtime.revisions import Revisions
from deploy.probes import port_free
from tests.conftest import free_ports
from tests.support.redis_servers import RedisServer

KEYS = RedisKeys("indexflow.")


def cluster_ports() -> list[int]:
    """Three free ports whose cluster bus ports (each + 10000) are free too."""
    while True:
        first = free_ports(3)
        if first + 2 + 10000 <= 65535 and all(port_free("127.0.0.1", first + i + 10000) for i in range(3)):
            return [first, first + 1, first + 2]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    ports = cluster_ports()
    root = tmp_path_factory.mktemp("cluster")
    servers = [
        RedisServer(root / str(port), "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                    "--appendonly", "no", port=port).start()
        for port in ports
    ]
    try:
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{s.port}" for s in servers),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )
        client = RedisCluster(host="127.0.0.1", port=ports[0])
        deadline = time.monotonic() + 30
        while client.cluster_info().get("cluster_state") != "ok":
            assert time.monotonic() < deadline, "the cluster never came up"
            time.sleep(0.2)
        yield client
        client.close()
    finally:
        for server in servers:
            server.stop()


def upsert(document_id: str, revision: int) -> DocumentUpserted:
    return DocumentUpserted(tenant_id="acme", dataset_id="ds", document_id=document_id, revision=revision,
                            name="n", source=InlineSource(text="t"))


def test_the_revision_scripts_run_on_a_cluster(cluster: RedisCluster):
    revisions = Revisions(cluster, KEYS)
    first = upsert("d1", revisions.next_revision("acme/d1"))  # issued and latest, read together
    assert revisions.latest("acme/d1") == first.revision
    revisions.pause(first)
    assert revisions.park("acme/d1", first.revision, "t", b"acme/d1", b"{}")  # the pause and the parked list
    assert revisions.resume(first) == [("t", b"acme/d1", b"{}")]


def test_the_dataset_position_script_runs_on_a_cluster(cluster: RedisCluster):
    catalog = DatasetCatalog(cluster, KEYS)
    assert catalog.position("acme", "ds", "d1") == 1  # the positions and first-written times
    assert catalog.position("acme", "ds", "d2") == 2


def test_the_projector_folds_states_on_a_cluster(cluster: RedisCluster):
    store = StateStore(cluster, KEYS)
    event = StatusEvent(tenant_id="acme", dataset_id="ds", document_id="d1", revision=5,
                        status=DocumentStatus.WAITING, stage=Stage.GATEWAY)
    # states, positions, the dataset's sets and the tenant's channel in one script; a MULTI read
    assert store.fold(event, position=0) is not None
    assert store.get("acme/d1").status is DocumentStatus.WAITING
    # States from before the datasets' counts and orders are indexed by pipelined scripts
    cluster.delete(KEYS.state_counted, KEYS.dataset_counts, KEYS.dataset_indexes_complete)
    assert StateStore(cluster, KEYS).index_stored() == 1
    assert store.newest_first("acme", "ds", 0, 10)[1] == 1 and store.dataset_figures("acme", ["ds"])["ds"].live == 1
    assert store.fold(event.model_copy(update={"status": DocumentStatus.COMPLETED, "stage": Stage.INDEXER}), 1)
    DocumentVisibility(cluster, KEYS, store).apply("acme", "ds", "d1", "disable")  # moved to the disabled ones
    assert store.newest_first("acme", "ds", 0, 10, shown="disabled")[1] == 1


def test_keys_of_before_the_hash_tag_are_renamed_once(tmp_path: Path):
    server = RedisServer(tmp_path / "standalone").start()
    try:
        client = server.client()
        client.hset("indexflow.api-keys", "digest", "acme")
        client.hset("indexflow.revision:issued", "acme/d1", 7)
        client.hset("indexflow.serving", "acme/d1", 7)
        client.hset(KEYS.serving_revisions, "acme/d1", 8)  # written by an upgraded service already
        client.set("other.api-keys", "another deployment's")
        assert tag_keys(client, KEYS) == (2, 1)
        assert client.hget(KEYS.api_keys, "digest") == b"acme"
        assert client.hget(KEYS.revisions_issued, "acme/d1") == b"7"
        assert client.hget(KEYS.serving_revisions, "acme/d1") == b"8" and client.exists("indexflow.serving")
        assert client.get("other.api-keys") == b"another deployment's"
        assert tag_keys(client, KEYS) == (0, 1)
    finally:
        server.stop()
