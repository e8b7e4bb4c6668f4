"""The retrieve API as Dify has it: modes semantic / full_text / hybrid, top_k, score_threshold,
filters by document, each record's per-mode scores; the tenant always enforced."""

from __future__ import annotations

import pytest

from services.runtime.settings import Settings
from tests.support.gateway import Gateway
from tests.test_pipeline_e2e import ALPHA, BETA


@pytest.fixture(scope="module")
def indexed(pipeline: Settings) -> tuple[Gateway, dict[str, str]]:
    gateway = Gateway(pipeline, tenant="api", dataset="search-api")
    ids = {}
    for name, text in (("aurora", ALPHA), ("bread", BETA)):
        accepted = gateway.create_text(f"{name}.txt", text)
        assert gateway.wait(accepted["document_id"], accepted["revision"])["status"] == "completed"
        ids[name] = accepted["document_id"]
    return gateway, ids


def retrieve(gateway: Gateway, **body) -> list[dict]:
    response = gateway.http.post(f"/v1/datasets/{gateway.dataset}/retrieve", json=body)
    assert response.status_code == 200, response.text
    return response.json()["records"]


@pytest.mark.parametrize("mode", ["full_text", "semantic", "hybrid"])
def test_each_mode_answers_with_per_mode_scores(indexed, mode: str):
    gateway, ids = indexed
    [first, *_] = retrieve(gateway, query="sourdough starter yeast", mode=mode, top_k=2)
    assert first["document_id"] == ids["bread"]
    scores = first["scores"]
    assert (scores["full_text"] is not None) == (mode != "semantic")
    assert (scores["semantic"] is not None) == (mode != "full_text")


def test_score_threshold_drops_weaker_records(indexed):
    gateway, _ = indexed
    records = retrieve(gateway, query="sourdough starter yeast", mode="hybrid", top_k=10)
    assert len(records) == 2
    cut = (records[0]["score"] + records[1]["score"]) / 2
    assert retrieve(gateway, query="sourdough starter yeast", mode="hybrid", top_k=10, score_threshold=cut) == \
        records[:1]


def test_document_filter_limits_the_search(indexed):
    gateway, ids = indexed
    records = retrieve(gateway, query="sourdough starter yeast", mode="hybrid", top_k=10, document_ids=[ids["aurora"]])
    assert {r["document_id"] for r in records} == {ids["aurora"]}


def test_another_tenant_sees_nothing(indexed, pipeline: Settings):
    _, ids = indexed
    stranger = Gateway(pipeline, tenant="someone-else", dataset="search-api")
    # The dataset id is another tenant's: to this one it does not exist.
    response = stranger.http.post("/v1/datasets/search-api/retrieve",
                                  json={"query": "sourdough starter yeast", "document_ids": [ids["bread"]]})
    assert response.status_code == 404 and response.json()["message"] == "Dataset not found."
    across = stranger.http.post("/v1/retrieve", json={"query": "sourdough starter yeast", "document_ids": [ids["bread"]]})
    assert across.status_code == 200 and across.json()["records"] == []


def test_metadata_filters_match_every_field_named(pipeline: Settings):
    gateway = Gateway(pipeline, tenant="api", dataset="search-metadata")
    ids = {}
    for author, year in (("Ann", 2020), ("Bob", 2021)):
        accepted = gateway.create_text(f"{author}.txt", BETA, metadata={"author": author, "year": year, "draft": True})
        gateway.wait(accepted["document_id"], accepted["revision"])
        ids[author] = accepted["document_id"]

    def found(**metadata) -> set[str]:
        return {r["document_id"] for r in retrieve(gateway, query="sourdough starter", top_k=10, metadata=metadata)}

    assert found(author="Ann") == {ids["Ann"]}
    assert found(year=2021, draft=True) == {ids["Bob"]}
    assert found(author="Ann", year=2021) == set()
    assert found() == set(ids.values())


def test_timings_split_elasticsearch_from_the_gateways_own_time(indexed):
    gateway, _ = indexed
    response = gateway.http.post(f"/v1/datasets/{gateway.dataset}/retrieve", json={"query": "polar lights"})
    timings = response.json()["timings"]
    assert set(timings) == {"elasticsearch_ms", "embedding_ms", "rerank_ms", "total_ms"}
    assert timings["elasticsearch_ms"] > 0 and timings["rerank_ms"] == 0
    assert timings["total_ms"] >= timings["elasticsearch_ms"] + timings["embedding_ms"]


def test_a_metadata_condition_over_its_value_limit_is_refused(indexed):
    gateway, _ = indexed
    values = [f"v{n}" for n in range(20_000)]
    conditions = [{"name": field, "comparison_operator": "in", "value": values} for field in ("a", "b", "c")]
    response = gateway.http.post("/v1/retrieve", json={"query": "sourdough", "retrieval_model": {
        "search_method": "full_text_search", "reranking_enable": False, "top_k": 3, "score_threshold_enabled": False,
        "metadata_filtering_conditions": {"logical_operator": "and", "conditions": conditions}}})
    assert response.status_code == 400 and "at most 10,000 values" in response.json()["message"], response.text[:500]
