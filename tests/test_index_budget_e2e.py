"""Elasticsearch indices are bounded: datasets have indices of their own up to the deployment's
budget, then share their tenant's; a deleted dataset leaves no index; a tenant's datasets are
bounded. (Datasets sharing their tenant's index: tests/test_tenant_statistics_e2e.py.)"""

from __future__ import annotations

import uuid

import httpx
from elasticsearch import Elasticsearch

from services.indexer.legacy_aliases import alias_unaliased_indices
from services.indexer.mapping import index_name, mapping, tenant_alias
from services.indexer.placement import IndexPlacements
from services.runtime.redis_client import redis_client
from services.runtime.settings import Settings
from tests.support.gateway import Gateway, extra_gateway
from tests.support.waiting import wait_for


def test_datasets_have_their_own_index_up_to_the_budget_then_their_tenants(settings: Settings):
    placements = IndexPlacements(redis_client(settings), settings.keys, budget=2)
    never = lambda: False  # noqa: E731 - no index made before placements
    assert [placements.place("acme", d, never).own for d in ("a", "b", "c")] == [True, True, False]
    assert placements.place("acme", "a", never) == placements.of("acme", "a"), "recorded: the same answer again"
    assert not placements.place("globex", "d", never).own, "the budget is the deployment's"
    assert placements.place("globex", "legacy", lambda: True).own, "an index it already has stays its own"

    placements.release("acme", "a")
    placements.release("globex", "legacy")
    assert placements.place("globex", "e", never).own, "a deleted dataset's share is free again"
    again = placements.place("acme", "a", never)
    assert not again.own, "placed anew"


def test_indices_made_before_tenant_aliases_get_theirs(settings: Settings):
    """A search of all a tenant's datasets names its alias: a dataset indexed before aliases, and
    not written to since, must be in it too."""
    es = Elasticsearch(settings.elasticsearch_url)
    prefix = settings.topic_prefix
    old, per_model = index_name(prefix, None, ("acme", "old")), index_name(prefix, None)
    for name in (old, per_model):  # as the indexer of before made them: no alias
        es.indices.create(index=name, mappings=mapping(None))
        es.index(index=name, id="c1", document={"tenant_id": "acme", "content": "x"}, refresh=True)

    alias_unaliased_indices(es, prefix)
    assert es.indices.get_alias(index=old)[old]["aliases"] == {tenant_alias(prefix, None, "acme"): {}}
    assert not es.indices.get(index=per_model)[per_model].get("aliases"), "every tenant's chunks: no tenant's alias"


def test_deleting_a_dataset_deletes_its_index(pipeline: Settings):
    es = Elasticsearch(pipeline.elasticsearch_url)
    tenant = f"budget-{uuid.uuid4().hex[:8]}"
    doomed, kept = Gateway(pipeline, tenant, "doomed"), Gateway(pipeline, tenant, "kept")
    accepted = [(g, g.create_text(f"{g.dataset}-{i}.txt", f"Lighthouse log {i} of {g.dataset}.",
                                  indexing_technique="economy"))
                for i, g in enumerate((doomed, doomed, kept))]
    for gateway, document in accepted:
        assert gateway.wait(document["document_id"], document["revision"])["status"] == "completed"
    own = {g.dataset: index_name(pipeline.topic_prefix, None, (tenant, g.dataset)) for g in (doomed, kept)}
    assert all(es.indices.exists(index=name) for name in own.values())

    assert doomed.http.delete("/v1/datasets/doomed").status_code == 204
    wait_for(lambda: not es.indices.exists(index=own["doomed"]), "the deleted dataset's index deleted")
    assert es.indices.exists(index=own["kept"])
    assert [r["document_id"] for r in kept.search("lighthouse", mode="full_text")] == [accepted[2][1]["document_id"]]

    # An empty dataset's delete leaves nothing either, and a deleted id may be written again.
    empty = doomed.http.post("/v1/datasets", json={"name": f"empty-{tenant}"}).json()["id"]
    assert doomed.http.delete(f"/v1/datasets/{empty}").status_code == 204
    again = doomed.create_text("again.txt", "Lighthouse log again.", indexing_technique="economy")
    assert doomed.wait(again["document_id"], again["revision"])["status"] == "completed"
    assert [r["document_id"] for r in doomed.search("lighthouse", mode="full_text")] == [again["document_id"]]


def test_a_tenants_datasets_are_bounded(pipeline: Settings):
    with extra_gateway(INDEXFLOW_GATEWAY_MAX_DATASETS_PER_TENANT="3") as url:
        http = httpx.Client(base_url=url, headers={"X-Tenant-Id": f"bounded-{uuid.uuid4().hex[:8]}"}, timeout=60)
        created = [http.post("/v1/datasets", json={"name": f"set-{i}"}) for i in range(3)]
        assert [r.status_code for r in created] == [200, 200, 200], [r.text for r in created]

        refused = http.post("/v1/datasets", json={"name": "one-too-many"})
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "forbidden"
        assert "3 datasets" in refused.json()["message"], refused.json()
        implicit = http.post("/v1/datasets/implicit/document/create-by-text", json={"name": "a.txt", "text": "x"})
        assert implicit.status_code == 403, implicit.text

        assert http.delete(f"/v1/datasets/{created[0].json()['id']}").status_code == 204
        assert http.post("/v1/datasets", json={"name": "one-too-many"}).status_code == 200
