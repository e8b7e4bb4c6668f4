"""Search one dataset or every dataset of the tenant: BM25, kNN per model, or both fused."""

from __future__ import annotations

from fastapi import APIRouter

from schemas.envelope import Id
from services.gateway.errors import ApiError
from services.gateway.requests import RetrieveRequest
from services.gateway.services import Clients, Services, Tenant
from services.search.hybrid import Scope

router = APIRouter()


@router.post("/v1/datasets/{dataset_id}/retrieve")
def retrieve(dataset_id: Id, body: RetrieveRequest, tenant: Tenant, s: Clients) -> dict:
    return search(s, body, body.scope(tenant, dataset_id))


@router.post("/v1/retrieve")
def retrieve_across(body: RetrieveRequest, tenant: Tenant, s: Clients) -> dict:
    return search(s, body, body.scope(tenant, body.dataset_id))


def search(s: Services, body: RetrieveRequest, scope: Scope) -> dict:
    if body.rerank and s.search.reranker is None:
        raise ApiError(400, "reranking is not configured: set INDEXFLOW_SEARCH_RERANK_MODEL (and CO_API_KEY)")
    answer = s.search.search(body.query, scope, body.top_k, body.mode, body.score_threshold, body.rerank)
    response: dict = {
        "query": body.query, "records": [hit.__dict__ for hit in answer.records], "timings": answer.timings.as_dict(),
    }
    if body.rerank:
        response["reranked"] = answer.reranked
        if answer.rerank_error is not None:
            response["rerank_error"] = answer.rerank_error
    return response
