"""Every script and transaction that names several state keys runs on Redis Cluster, which refuses
one whose keys hash to different slots (CROSSSLOT): a real three-master cluster of Debian's
redis-server on loopback ports, reached through redis-py's RedisCluster."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis.asyncio
from redis.cluster import RedisCluster

from schemas import DocumentStatus, DocumentUpserted, InlineSource, Stage, StatusEvent
from services.gateway.datasets import DatasetCatalog
from services.gateway.keyword_listing import KeywordListing
from services.gateway.pipeline_history import PipelineHistory
from services.gateway.visibility import DocumentVisibility
from services.projector.store import StateStore
from services.runtime.key_migration import Migrated, migrate_keys
from services.runtime.blobs import BlobStore
from services.runtime.keys import RedisKeys
from services.runtime.registry import DocumentRegistry
from services.runtime.revisions import Revisions, Verdict
from services.runtime.serving import ServingRevisions
from services.runtime.settings import Settings
from services.runtime.tenants import Tenants
from tests.support.redis_servers import RedisClusterOfThree, RedisServer

KEYS = RedisKeys("indexflow.")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    servers = RedisClusterOfThree(tmp_path_factory.mktemp("cluster")).start()
    client = servers.client()
    try:
        yield client
    finally:
        client.close()
        servers.stop()


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
    cluster.delete(KEYS.dataset_counts("acme"), KEYS.dataset_indexes_complete)
    cluster.hset(KEYS.state_positions("acme"), "acme/d1", "0")  # the offset alone, as kept before the counts
    assert StateStore(cluster, KEYS).index_stored() == 1
    assert store.newest_first("acme", "ds", 0, 10)[1] == 1 and store.dataset_figures("acme", ["ds"])["ds"].live == 1
    assert store.fold(event.model_copy(update={"status": DocumentStatus.COMPLETED, "stage": Stage.INDEXER}), 1)
    DocumentVisibility(cluster, KEYS, store).apply("acme", "ds", "d1", "disable")  # moved to the disabled ones
    assert store.newest_first("acme", "ds", 0, 10, shown="disabled")[1] == 1


def test_a_listing_by_keyword_follows_the_journal_on_a_cluster(cluster: RedisCluster):
    store = StateStore(cluster, KEYS)
    listing = KeywordListing(cluster, KEYS, store, budget=1000)
    # read while empty (the sets, positions, renames and journal in one MULTI), then from the journal
    assert listing.page("globex", "ds", "x", None, False, 0, 10) == ([], 0)
    for n, name in enumerate(("x-1.txt", "y.txt", "X-2.txt")):
        store.fold(StatusEvent(tenant_id="globex", dataset_id="ds", document_id=f"d{n}", revision=1,
                               status=DocumentStatus.WAITING, stage=Stage.GATEWAY, name=name), position=n)
    DatasetCatalog(cluster, KEYS).position("globex", "ds", "d0")
    assert listing.page("globex", "ds", "x-", None, False, 0, 10) == (["d0", "d2"], 2)
    assert KeywordListing(cluster, KEYS, store, budget=1000).page("globex", "ds", "x-", None, False, 0, 10) == (
        ["d0", "d2"], 2)


def test_a_batch_of_several_tenants_documents_runs_on_a_cluster(cluster: RedisCluster, tmp_path: Path):
    """Each tenant's state keys share a slot of its own, so what a stage does for a batch of several
    tenants' documents is split by tenant, never one script naming two tenants' keys."""
    tenants = ["acme", "globex", "initech"]
    assert len({cluster.keyslot(KEYS.states(tenant)) for tenant in tenants}) == len(tenants)
    upserts = [DocumentUpserted(tenant_id=tenant, dataset_id="ds", document_id="d1", revision=9, name="n",
                                source=InlineSource(text="t")) for tenant in tenants]
    revisions = Revisions(cluster, KEYS)
    assert set(revisions.verdicts([(u.key, u.revision) for u in upserts], observe=True)) == {Verdict.CURRENT}
    registry = DocumentRegistry(cluster, KEYS, BlobStore(Settings(state_dir=tmp_path)))
    registry.remember_many(upserts)
    assert {u.key for page in registry.unfinished_pages(time.time() + 1) for u in page} == {u.key for u in upserts}
    store = StateStore(cluster, KEYS)
    folded = store.fold_many(
        (StatusEvent(tenant_id=u.tenant_id, dataset_id="ds", document_id="d1", revision=9, status=status,
                     stage=Stage.INDEXER), offset)
        for offset, (u, status) in enumerate((u, s) for u in upserts
                                              for s in (DocumentStatus.WAITING, DocumentStatus.COMPLETED)))
    assert sum(state is not None for state in folded.values()) == 2 * len(tenants)
    assert store.status_totals()["completed"] == len(tenants)
    assert not [u for page in registry.unfinished_pages(time.time() + 1) for u in page]  # finished as written
    serving = ServingRevisions(cluster, KEYS)
    serving.publish_many([(u.key, u.revision) for u in upserts])
    assert serving.serving(u.key for u in upserts) == {u.key: 9 for u in upserts}


def test_the_latency_chart_follows_every_tenants_states_on_a_cluster(cluster: RedisCluster):
    """The gateway's pattern subscription (every tenant's channel) through an async cluster client,
    which must learn its nodes before it can subscribe; the states published by the projector's
    scripts on every master."""
    url = f"redis://127.0.0.1:{cluster.get_default_node().port}/0"
    history = PipelineHistory(every_seconds=0.5)

    async def follow_while_folding() -> None:
        client = redis.asyncio.RedisCluster.from_url(url)
        following = asyncio.create_task(history.follow(lambda: {"stages": []}, client, KEYS))
        await asyncio.sleep(0.7)  # subscribed
        store = StateStore(cluster, KEYS)
        for tenant in ("acme", "globex", "initech"):
            for status in (DocumentStatus.WAITING, DocumentStatus.COMPLETED):
                offset = 10 if status is DocumentStatus.WAITING else 11
                store.fold(StatusEvent(tenant_id=tenant, dataset_id="ds", document_id="chart", revision=3,
                                       status=status, stage=Stage.INDEXER), offset)
        await asyncio.sleep(1.2)
        following.cancel()
        await client.aclose()

    asyncio.run(follow_while_folding())
    assert sum(sample["completed"] for sample in history.samples()) == 3


def test_keys_of_earlier_layouts_are_moved_once_to_each_tenants_tag(tmp_path: Path):
    server = RedisServer(tmp_path / "standalone").start()
    try:
        client = server.client()
        client.hset("indexflow.api-keys", "digest", "acme")  # untagged: before the namespace's tag
        client.hset("indexflow.revision:issued", "acme/d1", 7)
        client.hset("indexflow.serving", "acme/d1", 7)
        client.hset("{indexflow.}state", mapping={"acme/d1": "{}", "globex/d2": "{}"})  # one hash for all
        client.hset("{indexflow.}dataset-counts", "globex/ds|completed", 1)
        client.zadd("{indexflow.}unfinished", {"globex/d2": 5})
        client.hset("{indexflow.}chunks:globex/d2", "5/0/0", "x")
        client.set("{indexflow.}writing:globex/d2", "token", px=60_000)
        client.zadd("{indexflow.}dataset-documents:globex/ds", {"d2": 1})  # read by no version now
        client.hset(KEYS.serving_revisions("acme"), "acme/d1", 8)  # written by an upgraded service already
        client.set("other.api-keys", "another deployment's")
        client.set("indexflow.x.api-keys", "a deployment whose namespace begins with ours")
        client.zadd("{indexflow.x.@acme}dataset-documents:acme/ds", {"d": 1})  # a namespace ours begins
        assert migrate_keys(client, KEYS) == Migrated(moved=11, left=1)
        assert client.hget(KEYS.api_keys, "digest") == b"acme"
        assert client.hget(KEYS.revisions_issued("acme"), "acme/d1") == b"7"
        assert client.hget(KEYS.serving_revisions("acme"), "acme/d1") == b"8"  # the newer one kept
        assert client.hget(KEYS.states("globex"), "globex/d2") == b"{}" and client.hlen(KEYS.states("acme")) == 1
        assert client.hget(KEYS.dataset_counts("globex"), "globex/ds|completed") == b"1"
        assert client.zscore(KEYS.unfinished("globex"), "globex/d2") == 5
        assert client.hget(KEYS.chunks("globex/d2"), "5/0/0") == b"x"
        assert 0 < client.pttl(KEYS.document_writer("globex/d2")) <= 60_000
        assert Tenants(client, KEYS).all() == ["acme", "globex"]
        assert client.keys("*dataset-documents*") == [b"{indexflow.x.@acme}dataset-documents:acme/ds"]
        assert client.get("other.api-keys") == b"another deployment's"
        assert client.get("indexflow.x.api-keys") == b"a deployment whose namespace begins with ours"
        assert migrate_keys(client, KEYS) == Migrated(moved=0, left=0)
    finally:
        server.stop()
