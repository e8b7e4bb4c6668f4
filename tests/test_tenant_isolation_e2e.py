"""Two tenants behind a gateway that requires API keys, with the same dataset and document ids,
the same batch id and overlapping texts: randomized reads and writes across them leak nothing."""

from __future__ import annotations

import random

import httpx
import pytest
from click.testing import CliRunner

from services.cli.main import cli
from services.gateway.api_keys import ApiKeys
from services.runtime.redis_client import redis_client
from services.runtime.settings import Settings
from tests.support.gateway import Gateway, extra_gateway

TENANTS = ("acme", "globex")
IDS = ("doc-1", "doc-2", "doc-3")


def text(tenant: str, document_id: str) -> str:
    return (f"Quarterly harbour logistics report {document_id}. Cranes, berths and tides are shared words. "
            f"Confidential marker {tenant}-only-{document_id}.")


@pytest.fixture(scope="module")
def secured(pipeline: Settings):
    """A second gateway on the same pipeline, with INDEXFLOW_AUTH=api_keys."""
    with extra_gateway(INDEXFLOW_AUTH="api_keys") as url:
        yield url


def client(url: str, key: str) -> Gateway:
    gateway = Gateway.__new__(Gateway)
    gateway.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}", "X-Batch-Id": "batch-1"},
                                timeout=60)
    gateway.dataset = "shared"
    return gateway


def test_keys_gate_every_call_and_tenants_see_only_their_own(pipeline: Settings, secured: str):
    api_keys = ApiKeys(redis_client(pipeline), pipeline.keys)
    created = CliRunner().invoke(cli, ["keys", "create", "--tenant", "acme", "--name", "test"])
    assert created.exit_code == 0, created.output
    keys = {"acme": created.output.strip().splitlines()[-1], "globex": api_keys.create("globex")[0]}
    assert api_keys.tenant_of(keys["acme"]) == "acme"
    assert keys["acme"] not in str(redis_client(pipeline).hgetall(pipeline.keys.api_keys)), "stored hashed"

    anonymous = httpx.post(f"{secured}/v1/datasets/shared/retrieve", json={"query": "cranes"},
                           headers={"X-Tenant-Id": "acme"})
    assert anonymous.status_code == 401
    wrong = httpx.post(f"{secured}/v1/datasets/shared/retrieve", json={"query": "cranes"},
                       headers={"Authorization": "Bearer ifx-not-a-key"})
    assert wrong.status_code == 401
    impersonating = httpx.post(f"{secured}/v1/datasets/shared/retrieve", json={"query": "cranes"},
                               headers={"Authorization": f"Bearer {keys['acme']}", "X-Tenant-Id": "globex"})
    assert impersonating.status_code == 403

    gateways = {tenant: client(secured, key) for tenant, key in keys.items()}
    revisions = {}
    for tenant, gateway in gateways.items():
        for document_id in IDS:
            revisions[tenant, document_id] = gateway.create_text(f"{document_id}.txt", text(tenant, document_id),
                                                                 document_id=document_id)["revision"]
    for (tenant, document_id), revision in revisions.items():
        assert gateways[tenant].wait(document_id, revision)["status"] == "completed"

    rng = random.Random(7)
    deleted: set[tuple[str, str]] = set()
    for step in range(40):
        tenant = rng.choice(TENANTS)
        other = TENANTS[1 - TENANTS.index(tenant)]
        gateway = gateways[tenant]
        action = rng.choice(["search", "state", "batch", "list", "write"])
        if action == "search":
            query = rng.choice(["cranes berths tides", f"{other}-only", f"{tenant}-only", "confidential marker"])
            for record in gateway.search(query, mode=rng.choice(["bm25", "hybrid", "semantic"]), top_k=20):
                assert f"{other}-only" not in record["content"], (step, query, record)
        elif action == "state":
            document_id = rng.choice(IDS)
            state = gateway.state(document_id)
            assert state is None or state["tenant_id"] == tenant
        elif action == "batch":
            rows = gateway.http.get("/v1/datasets/shared/documents/batch-1/indexing-status").json()["data"]
            assert all(row.get("tenant_id", tenant) == tenant for row in rows)
        elif action == "list":
            rows = gateway.http.get("/v1/datasets/shared/documents").json()["data"]
            assert {row["tenant_id"] for row in rows} <= {tenant}
        elif (tenant, document_id := rng.choice(IDS)) not in deleted:
            if rng.random() < 0.5:
                gateway.wait(document_id, gateway.delete(document_id)["revision"])
                deleted.add((tenant, document_id))
            else:
                accepted = gateway.update_text(document_id, text(tenant, document_id) + " Revised.")
                gateway.wait(document_id, accepted["revision"])
        # Whatever one tenant did, the other's documents are all still there.
        for document_id in IDS:
            if (other, document_id) not in deleted:
                assert gateways[other].state(document_id)["status"] == "completed"

    revoked = next(k for k in api_keys.list() if k.tenant_id == "acme")
    assert CliRunner().invoke(cli, ["keys", "revoke", revoked.key_id]).exit_code == 0
    assert gateways["acme"].http.get("/v1/datasets/shared/documents").status_code == 401
    assert gateways["globex"].http.get("/v1/datasets/shared/documents").status_code == 200
