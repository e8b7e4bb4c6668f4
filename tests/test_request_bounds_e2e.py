"""Every setting a request can store is bounded and checked as it arrives: a bad one is a 400 in
Dify's error shape, never stored, never a 500 later. What an older gateway stored unchecked is
read defensively (its dataset keeps Dify's default retrieval settings)."""

from __future__ import annotations

import uuid

import httpx
import orjson
import pytest

from services.gateway.datasets import DatasetRecord
from services.runtime.redis_client import redis_client
from services.runtime.settings import Settings
from tests.support.gateway import Gateway

DIFY_MODEL = {"search_method": "hybrid_search", "reranking_enable": False, "top_k": 3,
              "score_threshold_enabled": False}


def nested(depth: int) -> dict:
    inner: dict = {}
    for _ in range(depth):
        inner = {"a": inner}
    return inner


@pytest.fixture
def gateway(pipeline: Settings) -> Gateway:
    return Gateway(pipeline, tenant=f"bounds-{uuid.uuid4().hex[:8]}", dataset="bounds")


def assert_refused(response: httpx.Response, *words: str) -> None:
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["code"] == "invalid_param" and answer["status"] == 400, answer
    assert all(word in answer["message"] for word in words), answer["message"]


@pytest.mark.parametrize("retrieval_model, words", [
    ({**DIFY_MODEL, "top_k": 0}, ["top_k"]),
    ({**DIFY_MODEL, "search_method": "psychic_search"}, ["search_method"]),
    ({**DIFY_MODEL, "weights": {"vector_setting": {"vector_weight": "heavy"}}}, ["vector_weight"]),
    ({**DIFY_MODEL, "weights": {"vector_setting": {"vector_weight": 7}}}, ["vector_weight"]),
    ({**DIFY_MODEL, "reranking_model": {"reranking_model_name": "m" * 300_000}}, ["reranking_model_name"]),
    ({**DIFY_MODEL, "top_k": nested(200)}, ["top_k"]),
], ids=["top-k-0", "unknown-method", "weight-not-a-number", "weight-out-of-range", "huge-name", "nested-200"])
def test_a_bad_retrieval_model_is_refused_and_not_stored(gateway: Gateway, retrieval_model: dict, words: list[str]):
    created = gateway.http.post("/v1/datasets", json={"name": "bad", "retrieval_model": retrieval_model})
    assert_refused(created, *words)
    listed = gateway.http.get("/v1/datasets")
    assert listed.status_code == 200 and listed.json()["total"] == 0, listed.text
    good = gateway.http.post("/v1/datasets", json={"name": "good"}).json()["id"]
    assert_refused(gateway.http.patch(f"/v1/datasets/{good}", json={"retrieval_model": retrieval_model}), *words)


@pytest.mark.parametrize("extra", [
    {"junk": "j" * 2**20}, {"junk": nested(200)}, {"reranking_model": {"junk": nested(200)}},
], ids=["huge", "nested-200", "nested-200-inside"])
def test_keys_dify_does_not_have_are_not_stored(gateway: Gateway, extra: dict):
    created = gateway.http.post("/v1/datasets", json={"name": "extra", "retrieval_model": {**DIFY_MODEL, **extra}})
    assert created.status_code == 200, created.text
    stored = gateway.http.get(f"/v1/datasets/{created.json()['id']}")
    assert "junk" not in stored.text and len(stored.content) < 16_384, stored.text[:500]
    assert gateway.http.get("/v1/datasets").status_code == 200


@pytest.mark.parametrize("route", ["retrieve", "hit-testing"])
@pytest.mark.parametrize("retrieval_model, words", [
    ({**DIFY_MODEL, "top_k": 0}, ["top_k"]),
    ({**DIFY_MODEL, "search_method": "psychic_search"}, ["search_method"]),
    ({**DIFY_MODEL, "weights": {"vector_setting": {"vector_weight": "heavy"}}}, ["vector_weight"]),
], ids=["top-k-0", "unknown-method", "weight-not-a-number"])
def test_a_bad_retrieval_model_in_a_search_is_a_400(gateway: Gateway, route: str, retrieval_model: dict,
                                                     words: list[str]):
    dataset = gateway.http.post("/v1/datasets", json={"name": "searched"}).json()["id"]
    response = gateway.http.post(f"/v1/datasets/{dataset}/{route}",
                                 json={"query": "anything", "retrieval_model": retrieval_model})
    assert_refused(response, *words)


@pytest.mark.parametrize("stored", [
    {**DIFY_MODEL, "top_k": 0},
    {**DIFY_MODEL, "search_method": "psychic_search"},
    {**DIFY_MODEL, "weights": {"vector_setting": {"vector_weight": "heavy"}}},
    {**DIFY_MODEL, "deep": nested(200)},
], ids=["top-k-0", "unknown-method", "weight-not-a-number", "nested-200"])
def test_what_an_older_gateway_stored_unchecked_breaks_no_route(pipeline: Settings, stored: dict):
    # The External Knowledge API's keys act as the default tenant in open mode (the test pipeline's).
    tenant, dataset = "default", f"legacy-{uuid.uuid4().hex[:8]}"
    record = DatasetRecord(id=dataset, name=dataset).model_dump(mode="json")
    redis_client(pipeline).hset(pipeline.keys.datasets(tenant), dataset,
                                orjson.dumps({**record, "retrieval_model": stored}))
    http = httpx.Client(base_url=pipeline.gateway_url, headers={"X-Tenant-Id": tenant}, timeout=60)
    try:
        listed = http.get("/v1/datasets", params={"limit": 100})
        assert listed.status_code == 200, listed.text
        [shown] = [d for d in listed.json()["data"] if d["id"] == dataset]
        # What is valid of it stays; the rest is Dify's default.
        assert shown["retrieval_model_dict"]["search_method"] == "hybrid_search"
        assert shown["retrieval_model_dict"]["top_k"] in (3, 4) and "deep" not in shown["retrieval_model_dict"]
        assert http.get(f"/v1/datasets/{dataset}").status_code == 200
        assert http.get("/v1/ops/overview").status_code == 200
        for route in ("retrieve", "hit-testing"):
            searched = http.post(f"/v1/datasets/{dataset}/{route}", json={"query": "anything"})
            assert searched.status_code == 200, searched.text
        external = http.post("/retrieval", headers={"Authorization": "Bearer any"}, json={
            "knowledge_id": dataset, "query": "anything", "retrieval_setting": {"top_k": 2}})
        assert external.status_code == 200 and external.json() == {"records": []}, external.text
    finally:
        redis_client(pipeline).hdel(pipeline.keys.datasets(tenant), dataset)


@pytest.mark.parametrize("body, words", [
    ({"doc_language": "x" * 10_000}, ["doc_language"]),
    ({"embedding_model_provider": "p" * 10_000}, ["embedding_model_provider"]),
    ({"retrieval_model": {**DIFY_MODEL, "top_k": 0}}, ["top_k"]),
    ({"process_rule": {"mode": "custom", "segmentation": {"separator": "#" * 10_000, "max_tokens": 500,
                                                          "chunk_overlap": 0}}}, ["separator"]),
], ids=["doc-language", "model-provider", "retrieval-model", "separator"])
def test_a_documents_free_form_settings_are_bounded(gateway: Gateway, body: dict, words: list[str]):
    response = gateway.http.post(f"/v1/datasets/{gateway.dataset}/document/create-by-text",
                                 json={"name": "options.txt", "text": "fine", **body})
    assert_refused(response, *words)


@pytest.mark.parametrize("route", ["/v1/datasets", "/v1/datasets/bounds/document/create-by-text"])
def test_json_nested_past_any_parsers_depth_is_a_400(gateway: Gateway, route: str):
    response = gateway.http.post(route, content=b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                                 headers={"Content-Type": "application/json"})
    assert_refused(response)


@pytest.mark.parametrize("values, words", [
    ({"author": "x" * 5000}, ["4096"]),
    ({f"field{n}": "y" * 4000 for n in range(5)}, ["16,384 byte limit"]),
], ids=["one-too-long", "all-too-large"])
def test_a_documents_metadata_values_are_bounded_as_they_are_set(gateway: Gateway, values: dict, words: list[str]):
    accepted = gateway.create_text("valued.txt", "fine")
    gateway.wait(accepted["document_id"], accepted["revision"])
    for name in values:
        assert gateway.http.post(f"/v1/datasets/{gateway.dataset}/metadata",
                                 json={"type": "string", "name": name}).status_code == 201
    response = gateway.http.post(f"/v1/datasets/{gateway.dataset}/documents/metadata", json={"operation_data": [{
        "document_id": accepted["document_id"], "partial_update": True,
        "metadata_list": [{"name": name, "value": value} for name, value in values.items()]}]})
    assert_refused(response, *words)
    assert gateway.state(accepted["document_id"])["revision"] == accepted["revision"]  # nothing published
