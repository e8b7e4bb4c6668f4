"""Reranking by Cohere's rerank API (a local stand-in speaking it): asked for, it reorders the
candidates; when Cohere fails, the fused order stands and the response says so; a gateway without
a rerank model refuses the request clearly."""

from __future__ import annotations

import httpx
import pytest

from services.runtime.settings import Settings
from tests.support.cohere_standin import CohereStandIn
from tests.support.gateway import Gateway, extra_gateway

TEXTS = {
    "tides.txt": "Tides rise and fall twice a day along the harbour wall.",
    "keepers.txt": "Lighthouse keepers trimmed the wicks; the harbour pilots read the tides and the wind.",
}


@pytest.fixture(scope="module")
def cohere() -> CohereStandIn:
    with CohereStandIn() as stand_in:
        yield stand_in


@pytest.fixture(scope="module")
def reranking(pipeline: Settings, cohere: CohereStandIn):
    with extra_gateway(CO_API_KEY="test-key", INDEXFLOW_EMBEDDING_COHERE_BASE_URL=cohere.url,
                       INDEXFLOW_SEARCH_RERANK_MODEL="rerank-v3.5") as url:
        writer = Gateway(pipeline, tenant="rerank", dataset="rerank")
        for name, text in TEXTS.items():
            accepted = writer.create_text(name, text)
            writer.wait(accepted["document_id"], accepted["revision"])
        yield httpx.Client(base_url=url, headers={"X-Tenant-Id": "rerank"}, timeout=60)


def retrieve(http: httpx.Client, **body) -> httpx.Response:
    return http.post("/v1/datasets/rerank/retrieve", json={"query": "harbour pilots wind", "top_k": 2, **body})


def test_rerank_reorders_by_cohere_relevance(reranking: httpx.Client, cohere: CohereStandIn):
    answer = retrieve(reranking, rerank=True).json()
    assert answer["reranked"] is True
    [first, second] = answer["records"]
    assert first["name"] == "keepers.txt" and first["scores"]["rerank"] == pytest.approx(1.0)
    assert first["score"] == first["scores"]["rerank"] > second["score"] == second["scores"]["rerank"]
    assert cohere.requests[-1]["path"] == "/v2/rerank" and cohere.requests[-1]["model"] == "rerank-v3.5"


def test_when_cohere_fails_the_fused_order_stands_and_says_why(reranking: httpx.Client, cohere: CohereStandIn):
    plain = retrieve(reranking).json()
    cohere.failing = True
    try:
        answer = retrieve(reranking, rerank=True).json()
    finally:
        cohere.failing = False
    assert answer["reranked"] is False and "rerank_error" in answer
    assert [r["segment_id"] for r in answer["records"]] == [r["segment_id"] for r in plain["records"]]


def test_a_gateway_without_a_rerank_model_refuses_clearly(pipeline: Settings):
    gateway = Gateway(pipeline, tenant="rerank", dataset="rerank")
    response = retrieve(gateway.http, rerank=True)
    assert response.status_code == 400 and "INDEXFLOW_SEARCH_RERANK_MODEL" in response.text
