"""Search one dataset or every dataset of the tenant: BM25, kNN per model, or both fused. The
request is the native one or Dify's (``retrieval_model``); each record carries Dify's ``segment``
beside the native fields."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

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


@router.post("/v1/datasets/{dataset_id}/retrieve")
@router.post("/v1/datasets/{dataset_id}/hit-testing")
def retrieve(dataset_id: Id, body: RetrieveRequest, tenant: Tenant, s: Clients) -> dict:
    record = existing_dataset(s, tenant, dataset_id)
    plan = body.plan(dify.retrieval_model(record))
    return answer(s, tenant, body, plan, search(s, tenant, body, plan, dataset_id))


@router.post("/v1/retrieve")
def retrieve_across(body: RetrieveRequest, tenant: Tenant, s: Clients) -> dict:
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
