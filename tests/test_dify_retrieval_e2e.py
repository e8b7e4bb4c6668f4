"""Search as Dify asks for it: the Knowledge API's retrieve / hit-testing (a Dify client's
retrieval_model, its record shape, thresholds, metadata filters), and the External Knowledge API
Dify itself calls (``POST /retrieval``: the registration probe, each error code, records)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from dify_dataset_sdk import DifyDatasetClient
from dify_dataset_sdk.datasets.models import (
    MetadataCondition, MetadataFilteringConditions, RetrievalModel, RetrievalResponse,
)

from services.gateway.api_keys import ApiKeys
from services.runtime.redis_client import redis_client
from services.runtime.settings import Settings
from tests.support.dify import completed
from tests.support.gateway import extra_gateway

DOCUMENTS = {
    "harbour": ("The harbour master logs every ferry that docks at the pier before dawn.", {"kind": "port", "year": 2021}),
    "glacier": ("The glacier retreats a few metres each summer as the ice melts into the fjord.", {"kind": "ice", "year": 2023}),
    "orchard": ("Apple trees in the orchard are pruned in winter and picked in early autumn.", {"kind": "farm", "year": 2019}),
}


@pytest.fixture(scope="module")
def indexed(pipeline: Settings) -> tuple[str, str, str]:
    """(key, dataset id, tenant): a dataset of three documents with metadata, completed."""
    tenant = f"dify-search-{uuid.uuid4().hex[:6]}"
    key = ApiKeys(redis_client(pipeline), pipeline.keys).create(tenant, "dify search")[0]
    http = httpx.Client(base_url=pipeline.gateway_url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
    dataset = http.post("/v1/datasets", json={"name": "Places"}).json()["id"]
    batch = uuid.uuid4().hex
    for name, (text, metadata) in DOCUMENTS.items():
        answer = http.post(f"/v1/datasets/{dataset}/document/create-by-text", headers={"X-Batch-Id": batch},
                           json={"name": f"{name}.txt", "text": text, "metadata": metadata, "document_id": name})
        assert answer.status_code == 200, answer.text
    with DifyDatasetClient(api_key=key, base_url=pipeline.gateway_url) as client:
        completed(client, dataset, batch)
    return key, dataset, tenant


def retrieve(pipeline: Settings, key: str, dataset: str, query: str, model: RetrievalModel) -> RetrievalResponse:
    with DifyDatasetClient(api_key=key, base_url=pipeline.gateway_url) as client:
        return client.datasets.retrieve(dataset, query, retrieval_model=model)


def model(method: str, top_k: int = 3, threshold: float | None = None, **extra) -> RetrievalModel:
    return RetrievalModel(search_method=method, reranking_enable=False, top_k=top_k,
                          score_threshold_enabled=threshold is not None, score_threshold=threshold, **extra)


@pytest.mark.parametrize("method", ["semantic_search", "full_text_search", "hybrid_search"])
def test_each_search_method_answers_in_dify_s_record_shape(pipeline, indexed, method):
    key, dataset, _ = indexed
    answer = retrieve(pipeline, key, dataset, "ferry docks at the pier", model(method, top_k=2))
    assert answer.query.content == "ferry docks at the pier" and len(answer.records) <= 2
    top = answer.records[0]
    assert top.segment.document.name == "harbour.txt" and top.segment.document.doc_metadata["kind"] == "port"
    assert top.segment.content.startswith("The harbour master") and 0.0 <= top.score <= 1.0


def test_a_threshold_and_top_k_are_kept(pipeline, indexed):
    key, dataset, _ = indexed
    everything = retrieve(pipeline, key, dataset, "ice melting in summer", model("semantic_search", top_k=3))
    assert len(everything.records) == 3
    [one] = retrieve(pipeline, key, dataset, "ice melting in summer", model("semantic_search", top_k=1)).records
    assert one.segment.document.name == "glacier.txt"
    cut = (everything.records[0].score + everything.records[1].score) / 2
    above = retrieve(pipeline, key, dataset, "ice melting in summer", model("semantic_search", threshold=cut)).records
    assert [r.segment.document.name for r in above] == ["glacier.txt"]


def test_metadata_filters_keep_only_the_documents_they_match(pipeline, indexed):
    key, dataset, _ = indexed
    newer = MetadataFilteringConditions(logical_operator="and", conditions=[
        MetadataCondition(name="year", comparison_operator="≥", value=2021),
        MetadataCondition(name="kind", comparison_operator="is not", value="port"),
    ])
    records = retrieve(pipeline, key, dataset, "ferry harbour glacier orchard",
                       model("hybrid_search", metadata_filtering_conditions=newer)).records
    assert {r.segment.document.name for r in records} == {"glacier.txt"}
    nothing = MetadataFilteringConditions(logical_operator="and", conditions=[
        MetadataCondition(name="kind", comparison_operator="is", value="desert")])
    assert retrieve(pipeline, key, dataset, "ferry", model("hybrid_search", metadata_filtering_conditions=nothing)).records == []


def test_dify_s_external_knowledge_requests(pipeline, indexed):
    key, dataset, _ = indexed
    with extra_gateway(INDEXFLOW_AUTH="api_keys") as url:
        probe = httpx.post(f"{url}/retrieval", headers={"Authorization": f"Bearer {key}"})
        assert probe.status_code not in (403, 404, 502)  # Dify registers the endpoint
        no_header = httpx.post(f"{url}/retrieval", json={})
        assert no_header.status_code == 403 and no_header.json()["error_code"] == 1001
        bad_format = httpx.post(f"{url}/retrieval", headers={"Authorization": key}, json={})
        assert bad_format.json()["error_code"] == 1001
        bad_key = httpx.post(f"{url}/retrieval", headers={"Authorization": "Bearer ifx-wrong"}, json={})
        assert bad_key.status_code == 403 and bad_key.json()["error_code"] == 1002

        def ask(**body) -> httpx.Response:
            request = {"knowledge_id": dataset, "query": "apple trees pruned in winter",
                       "retrieval_setting": {"top_k": 3, "score_threshold": 0.0}, **body}
            return httpx.post(f"{url}/retrieval", headers={"Authorization": f"Bearer {key}"}, json=request)

        missing = ask(knowledge_id=str(uuid.uuid4()))
        assert missing.status_code == 404 and missing.json()["error_code"] == 2001
        records = ask().json()["records"]
        assert records[0]["title"] == "orchard.txt" and records[0]["metadata"]["kind"] == "farm"
        assert all(isinstance(r["metadata"], dict) and 0.0 <= r["score"] <= 1.0 for r in records)
        # The same documents, in the same order, as the native search of the dataset.
        native = httpx.post(f"{url}/v1/datasets/{dataset}/retrieve", headers={"Authorization": f"Bearer {key}"},
                            json={"query": "apple trees pruned in winter", "top_k": 3}).json()["records"]
        assert [r["metadata"]["document_id"] for r in records] == [r["document_id"] for r in native]
        filtered = ask(metadata_condition={"logical_operator": "and", "conditions": [
            {"name": "kind", "comparison_operator": "is", "value": "ice"}]}).json()["records"]
        assert [r["title"] for r in filtered] == ["glacier.txt"]
        above = ask(retrieval_setting={"top_k": 3, "score_threshold": records[0]["score"]}).json()["records"]
        assert [r["title"] for r in above] == ["orchard.txt"]
