"""BM25 scores a tenant's chunks with that tenant's term statistics only: another tenant's documents,
full of the query's words, change none of its scores, on a dataset's search and on the search
across the tenant's datasets, with an index per dataset and with datasets sharing indices
(``INDEXFLOW_INDEX_PER_DATASET=false``, as datasets past the index budget do). Otherwise a tenant
could tell from its own scores which words other tenants' documents hold."""

from __future__ import annotations

import random
import string
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from services.indexer.mapping import all_chunk_indices
from services.runtime.settings import Settings
from tests.support.gateway import Gateway
from tests.support.pipelines import extra_pipeline
from tests.support.waiting import wait_for


@pytest.fixture(scope="module")
def shared_indices(pipeline: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with extra_pipeline(Path(tmp_path_factory.mktemp("shared-indices")), INDEXFLOW_INDEX_PER_DATASET="false") as s:
        yield s


def made_up_word(rng: random.Random) -> str:
    """A word no other document of the session holds (and no stemmer shortens)."""
    return "zq" + "".join(rng.choice(string.ascii_lowercase[:20]) for _ in range(8)) + "x"


def scores(gateway: Gateway, query: str, mode: str) -> dict[str, dict[str, float]]:
    """Each route's scores of the tenant's records: a dataset's retrieve, then /v1/retrieve (every dataset)."""
    found = {}
    for route in (f"/v1/datasets/{gateway.dataset}/retrieve", "/v1/retrieve"):
        response = gateway.http.post(route, json={"query": query, "mode": mode, "top_k": 10})
        assert response.status_code == 200, response.text
        found[route] = {r["document_id"]: r["scores"] for r in response.json()["records"]}
    return found


@pytest.mark.parametrize("deployment", ["pipeline", "shared_indices"])
def test_another_tenants_documents_change_no_score(deployment: str, request: pytest.FixtureRequest):
    settings: Settings = request.getfixturevalue(deployment)
    rng = random.Random()
    heron, kestrel, tag = made_up_word(rng), made_up_word(rng), made_up_word(rng)
    # The same dataset id for both tenants: in a shared index, nothing but the tenant tells them apart.
    watched = Gateway(settings, tenant=f"birds-{tag}", dataset="sightings")
    prober = Gateway(settings, tenant=f"probe-{tag}", dataset="sightings")
    mine = watched.create_text("heron.txt", f"A {heron} and a {kestrel} were seen at dawn.")
    assert watched.wait(mine["document_id"], mine["revision"])["status"] == "completed"
    before = {word: scores(watched, word, "full_text") for word in (heron, kestrel)}
    semantic_before = scores(watched, f"{heron} at dawn", "semantic")

    theirs = [prober.create_text(f"probe-{i}.txt", f"The {heron} report number {i}.") for i in range(20)]
    for accepted in theirs:
        assert prober.wait(accepted["document_id"], accepted["revision"])["status"] == "completed"

    after = {word: scores(watched, word, "full_text") for word in (heron, kestrel)}
    assert after == before, f"{deployment}: BM25 of {heron} moved by another tenant's documents"
    for word in (heron, kestrel):
        for route, records in after[word].items():
            assert list(records) == [mine["document_id"]], (route, records)
    # The two words are alike in this tenant's documents, so they score alike.
    assert {r: s[mine["document_id"]]["full_text"] for r, s in after[heron].items()} == {
        r: s[mine["document_id"]]["full_text"] for r, s in after[kestrel].items()}
    # kNN still finds the tenant's own chunk on both routes, scored as before.
    assert scores(watched, f"{heron} at dawn", "semantic") == semantic_before
    for route, records in semantic_before.items():
        assert mine["document_id"] in records, (route, records)


def test_datasets_sharing_an_index_share_it_with_their_own_tenant_only(shared_indices: Settings):
    """Past the index budget (here none: INDEXFLOW_INDEX_PER_DATASET=false) a tenant's datasets
    share one index per model, never another tenant's; deleting one of them deletes its chunks."""
    es = Elasticsearch(shared_indices.elasticsearch_url)
    tag = made_up_word(random.Random())
    tenants = {name: f"{name}-{tag}" for name in ("north", "south")}
    for tenant in tenants.values():
        for dataset in ("atlas", "maps"):
            gateway = Gateway(shared_indices, tenant=tenant, dataset=dataset)
            accepted = gateway.create_text(f"{dataset}.txt", f"Charts of the {dataset} coast.",
                                           indexing_technique="economy")
            assert gateway.wait(accepted["document_id"], accepted["revision"])["status"] == "completed"

    def indices_of(tenant: str, dataset: str | None = None) -> dict[str, int]:
        es.indices.refresh(index=all_chunk_indices(shared_indices.topic_prefix))
        query = {"bool": {"filter": [{"term": {"tenant_id": tenant}},
                                     *([{"term": {"dataset_id": dataset}}] if dataset else [])]}}
        found = es.search(index=all_chunk_indices(shared_indices.topic_prefix), query=query, size=100)
        return dict(Counter(hit["_index"] for hit in found["hits"]["hits"]))

    north, south = indices_of(tenants["north"]), indices_of(tenants["south"])
    assert len(north) == 1 and len(south) == 1, (north, south)
    assert set(north).isdisjoint(south), "two tenants' chunks in one index: their statistics mix"

    deleted = Gateway(shared_indices, tenant=tenants["north"], dataset="atlas").http.delete("/v1/datasets/atlas")
    assert deleted.status_code == 204, deleted.text
    wait_for(lambda: not indices_of(tenants["north"], "atlas"), "the deleted dataset's chunks removed")
    assert set(indices_of(tenants["north"], "maps")) == set(north), "the other dataset of the shared index stays"
