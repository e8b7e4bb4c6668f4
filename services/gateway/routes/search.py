"""Search one dataset or every dataset of the tenant: BM25, kNN per model, or both fused. The
request is the native one or Dify's (``retrieval_model``); each record carries Dify's ``segment``
beside the native fields. The routes read the body's bytes and a search worker does the rest
(``search_workers``: parsing, conditions and the answer cost a worker's CPU, not the gateway's)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from schemas import DocumentUpserted
from schemas.envelope import Id
from services.gateway import dify
from services.gateway.errors import ApiError
from services.gateway.filter_metadata import filter_metadata
from services.gateway.requests import RetrieveRequest, SearchPlan
from services.gateway.services import Clients, Services, Tenant, built_in_metadata, existing_dataset
from services.search.fusion import vector_weighted
from services.search.hybrid import Answer, Hit
from services.search.metadata_filter import MetadataCondition, TooManyDocuments, restriction

router = APIRouter()


# The body is parsed by the worker: declared here for the API's documentation only (its schema
# among the document's components: ``body_schemas``).
_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/RetrieveRequest"}}}}}


def body_schemas() -> dict[str, Any]:
    """The JSON Schemas of the bodies the search routes take, as OpenAPI components."""
    schema = RetrieveRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    return {**schema.pop("$defs", {}), "RetrieveRequest": schema}


@router.post("/v1/datasets/{dataset_id}/retrieve", openapi_extra=_BODY)
@router.post("/v1/datasets/{dataset_id}/hit-testing", openapi_extra=_BODY)
async def retrieve(dataset_id: Id, request: Request, tenant: Tenant, s: Clients) -> Response:
    return await s.search_workers.answer(tenant, retrieve_in_dataset, tenant, dataset_id, await request.body())


@router.post("/v1/retrieve", openapi_extra=_BODY)
async def retrieve_across(request: Request, tenant: Tenant, s: Clients) -> Response:
    return await s.search_workers.answer(tenant, retrieve_in_datasets, tenant, await request.body())


def retrieve_in_dataset(s: Services, tenant: str, dataset_id: str, raw: bytes) -> dict:
    body = RetrieveRequest.model_validate_json(raw)
    record = existing_dataset(s, tenant, dataset_id)
    plan = body.plan(dify.retrieval_model(record))
    return answer(s, tenant, body, plan, search(s, tenant, body, plan, dataset_id))


def retrieve_in_datasets(s: Services, tenant: str, raw: bytes) -> dict:
    body = RetrieveRequest.model_validate_json(raw)
    plan = body.plan()
    return answer(s, tenant, body, plan, search(s, tenant, body, plan, body.dataset_id))


def search(s: Services, tenant: str, body: RetrieveRequest, plan: SearchPlan, dataset_id: str | None) -> Answer | None:
    """The search the plan describes; None when its metadata condition lets no document through."""
    if plan.rerank and s.search.reranker is None:
        raise ApiError(400, "reranking is not configured: set INDEXFLOW_SEARCH_RERANK_MODEL (and CO_API_KEY)")
    hidden = s.visibility.hidden(tenant)
    restricted = None
    if plan.metadata is not None:
        try:
            restricted = restriction(*documents_meeting(s, tenant, dataset_id, plan.metadata), len(hidden))
        except TooManyDocuments as exc:
            raise ApiError(422, str(exc), code="too_many_documents") from exc
    scope = body.scope(tenant, dataset_id, restricted, hidden)
    if restricted is not None and restricted.only is not None and not scope.document_ids:
        return None
    fusion = vector_weighted(plan.vector_weight) if plan.vector_weight is not None else None
    return s.search.search(body.query, scope, plan.top_k, plan.mode, plan.score_threshold, plan.rerank, fusion)


def documents_meeting(s: Services, tenant: str, dataset_id: str | None,
                      condition: MetadataCondition) -> tuple[set[str], set[str]]:
    """The documents of the dataset (or of all the tenant's) whose metadata meets the condition,
    and those whose metadata does not."""
    datasets = [dataset_id] if dataset_id is not None else [record.id for record in s.catalog.all(tenant)]
    allowed: set[str] = set()
    rejected: set[str] = set()
    for dataset in datasets:
        for document, metadata in filter_metadata(s, tenant, dataset).items():
            (allowed if condition.allows(metadata) else rejected).add(document)
    return allowed, rejected


def metadata_values(s: Services, tenant: str, dataset_id: str,
                    upserts: list[DocumentUpserted]) -> dict[str, dict[str, Any]]:
    """Each document's metadata as Dify has it: its own values and, with its dataset's built-in
    fields switched on, theirs."""
    built_in = built_in_metadata(s, tenant, dataset_id, upserts)
    return {u.document_id: {**u.metadata, **built_in[u.document_id]} for u in upserts}


def hit_metadata(s: Services, tenant: str, hits: list[Hit]) -> dict[str, dict[str, Any]]:
    """``metadata_values`` of the documents of some hits."""
    by_dataset: dict[str, list[DocumentUpserted]] = {}
    for upsert in s.publisher.registry.newest_upserts([f"{tenant}/{hit.document_id}" for hit in hits]).values():
        by_dataset.setdefault(upsert.dataset_id, []).append(upsert)
    return {document: values for dataset, upserts in by_dataset.items()
            for document, values in metadata_values(s, tenant, dataset, upserts).items()}


def answer(s: Services, tenant: str, body: RetrieveRequest, plan: SearchPlan, found: Answer | None) -> dict:
    if found is None:
        return {"query": {"content": body.query}, "records": []}
    metadata = hit_metadata(s, tenant, found.records)
    response: dict[str, Any] = {
        "query": {"content": body.query},
        "records": [record(hit, metadata.get(hit.document_id, {})) for hit in found.records],
        "timings": found.timings.as_dict(),
    }
    if plan.rerank:
        response["reranked"] = found.reranked
        if found.rerank_error is not None:
            response["rerank_error"] = found.rerank_error
    return response


def record(hit: Hit, doc_metadata: dict[str, Any]) -> dict[str, Any]:
    """Dify's record (``segment`` with its ``document``, ``child_chunks``, ``score``) and the native hit."""
    hierarchical = hit.matched != hit.content
    segment = {
        "id": hit.segment_stable_id, "position": hit.position + 1, "document_id": hit.document_id,
        "content": hit.content, "sign_content": hit.content, "answer": None,
        "word_count": len(hit.content), "tokens": None, "keywords": [],
        "index_node_id": hit.segment_id, "index_node_hash": None, "hit_count": 0,
        "enabled": True, "disabled_at": None, "disabled_by": None, "status": "completed",
        "created_by": "api", "created_at": None, "indexing_at": None, "completed_at": None,
        "error": None, "stopped_at": None,
        "document": {
            "id": hit.document_id, "data_source_type": "upload_file", "name": hit.name, "doc_type": None,
            "doc_metadata": doc_metadata,
        },
    }
    child_chunks = [{"id": hit.stable_id, "content": hit.matched, "position": hit.position + 1,
                     "score": hit.score}] if hierarchical else []
    return {
        **hit.__dict__,
        "segment": segment, "child_chunks": child_chunks, "tsne_position": None, "files": [], "summary": None,
    }
