"""The whole pipeline with its state Redis on a real three-master Redis Cluster: every service
reaches it through a cluster client, and each tenant's state lives in a hash slot of its own, so
tenants spread over the masters instead of all sharing one."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from services.projector.store import StateStore
from services.runtime.keys import RedisKeys
from services.runtime.redis_client import redis_client
from tests.support.gateway import Gateway
from tests.support.pipelines import extra_pipeline
from tests.support.redis_servers import RedisClusterOfThree


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    servers = RedisClusterOfThree(tmp_path_factory.mktemp("cluster")).start()
    try:
        yield servers
    finally:
        servers.stop()


def tenants_on_every_master(cluster: RedisClusterOfThree, keys: RedisKeys) -> list[str]:
    """One tenant whose state the cluster keeps on each master."""
    on: dict[int, str] = {}
    for n in range(1000):
        on.setdefault(cluster.master_of(keys.states(f"tenant-{n}")), f"tenant-{n}")
        if len(on) == len(cluster.ports):
            return list(on.values())
    raise AssertionError("tenants' state keys never reach every master")


def states_fed(feed: httpx.Response, expected: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """(document, status) of the states a live feed sends, read until ``expected`` are among them."""
    seen: set[tuple[str, str]] = set()
    text = ""
    for chunk in feed.iter_text():
        text += chunk
        *events, text = text.split("\n\n")
        for event in events:
            kind, _, data = event.partition("\ndata: ")
            if kind == "event: states":
                seen |= {(state["document_id"], state["status"]) for state in orjson.loads(data)}
        if expected <= seen:
            break
    return seen


def test_the_pipeline_runs_on_a_cluster_with_each_tenant_on_a_master_of_its_own(
    stack_settings, cluster: RedisClusterOfThree, tmp_path: Path,
):
    cluster_settings = {"INDEXFLOW_REDIS_URL": cluster.url, "INDEXFLOW_REDIS_CLUSTER": "true"}
    with extra_pipeline(tmp_path / "state", **cluster_settings) as settings:
        tenants = tenants_on_every_master(cluster, settings.keys)
        accepted: dict[str, list[dict]] = {}
        live = Gateway(settings, tenant=tenants[0], dataset="notes").http.stream("GET", "/v1/ops/events")
        with live as feed:  # the dashboard's live feed: states published by the projector's scripts
            assert feed.status_code == 200
            for tenant in tenants:
                gateway = Gateway(settings, tenant=tenant, dataset="notes")
                accepted[tenant] = [gateway.create_text(f"{tenant}-{n}.txt", f"{tenant} keeps note {n} about glaciers.")
                                    for n in range(3)]
            expected = {(document["document_id"], "completed") for document in accepted[tenants[0]]}
            assert expected <= states_fed(feed, expected)
        for tenant in tenants:
            gateway = Gateway(settings, tenant=tenant, dataset="notes")
            first, second, third = accepted[tenant]
            for document in accepted[tenant]:
                assert gateway.wait(document["document_id"], document["revision"])["status"] == "completed"
            updated = gateway.update_text(first["document_id"], f"{tenant} rewrote its first note about fjords.")
            assert gateway.wait(first["document_id"], updated["revision"])["status"] == "completed"
            deleted = gateway.delete(third["document_id"])
            assert gateway.wait(third["document_id"], deleted["revision"])["status"] == "deleted"

            listed = gateway.http.get("/v1/datasets/notes/documents").json()
            assert {d["id"] for d in listed["data"]} == {first["document_id"], second["document_id"]}
            by_name = gateway.http.get("/v1/datasets/notes/documents", params={"keyword": f"{tenant}-1"}).json()
            assert ([d["id"] for d in by_name["data"]], by_name["total"]) == ([second["document_id"]], 1)
            [dataset] = [d for d in gateway.http.get("/v1/datasets").json()["data"] if d["id"] == "notes"]
            assert dataset["document_count"] == 2
            hits = gateway.search("fjords")
            assert [hit["document_id"] for hit in hits][:1] == [first["document_id"]]
            assert all(hit["document_id"] in {first["document_id"], second["document_id"]} for hit in hits)

            overview = gateway.http.get("/v1/ops/overview").json()
            [notes] = [d for d in overview["datasets"] if d["id"] == "notes"]
            assert notes["statuses"] == {"completed": 2, "deleted": 1}

        # Deployment-wide figures read every tenant's state, wherever its master
        statuses = StateStore(redis_client(settings), settings.keys).status_totals()
        assert statuses["completed"] >= 2 * len(tenants) and statuses["deleted"] >= len(tenants)
        # Each tenant's state on the master its tag names: every master holds some.
        client = cluster.client()
        for tenant in tenants:
            node = client.get_node_from_key(settings.keys.states(tenant))
            assert client.get_redis_connection(node).hlen(settings.keys.states(tenant)) == 3
        client.close()
