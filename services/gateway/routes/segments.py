"""A document's segments as Dify lists them: the chunks of the revision search serves, in order;
for a hierarchical document each parent with its child chunks (what search matches)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from elasticsearch import NotFoundError
from fastapi import APIRouter, Query

from schemas import document_key
from schemas.envelope import Id
from services.gateway.errors import ApiError
from services.gateway.services import Clients, Services, Tenant, require_document
from services.indexer.mapping import all_chunk_indices

router = APIRouter(prefix="/v1/datasets/{dataset_id}/documents/{document_id}/segments")
SegmentStatuses = Annotated[list[str] | None, Query(description="Dify's segment statuses: indexed ones are 'completed'")]
_MAX_CHUNKS = 10_000  # one document's: far above what a document makes at the record limits
_FIELDS = ["segment_id", "document_id", "content", "parent_id", "parent_content", "part", "position", "page",
           "tokens", "word_count", "content_hash", "indexed_at"]  # never the vector


@router.get("")
def list_segments(
    dataset_id: Id, document_id: Id, tenant: Tenant, s: Clients,
    page: Annotated[int, Query(ge=1)] = 1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    keyword: Annotated[str | None, Query(max_length=256)] = None,
    status: SegmentStatuses = None,
) -> dict:
    require_document(s, tenant, dataset_id, document_id, live=True)
    segments, doc_form = served_segments(s, tenant, document_id)
    if keyword:
        segments = [seg for seg in segments if keyword.lower() in seg["content"].lower()]
    if status:
        segments = [seg for seg in segments if seg["status"] in status]
    shown = segments[(page - 1) * limit: page * limit]
    return {"data": shown, "doc_form": doc_form, "total": len(segments), "has_more": page * limit < len(segments),
            "limit": limit, "page": page}


@router.get("/{segment_id}")
def get_segment(dataset_id: Id, document_id: Id, segment_id: str, tenant: Tenant, s: Clients) -> dict:
    require_document(s, tenant, dataset_id, document_id, live=True)
    segments, doc_form = served_segments(s, tenant, document_id)
    found = next((seg for seg in segments if seg["id"] == segment_id), None)
    if found is None:
        raise ApiError(404, "Segment not found.")
    return {"data": found, "doc_form": doc_form}


def served_segments(s: Services, tenant: str, document_id: str) -> tuple[list[dict[str, Any]], str]:
    """The segments of the document's searchable revision, in order, and its doc_form."""
    key = document_key(tenant, document_id)
    upsert = s.publisher.registry.newest_upsert(key)
    doc_form = upsert.indexing.doc_form if upsert is not None else "text_model"
    revision = s.serving_revisions([key]).get(key)
    if revision is None:
        return [], doc_form
    try:
        hits = s.es.search(
            index=all_chunk_indices(s.settings.topic_prefix), allow_no_indices=True, ignore_unavailable=True,
            query={"bool": {"filter": [{"term": {"tenant_id": tenant}}, {"term": {"document_id": document_id}},
                                       {"term": {"revision": revision}}]}},
            size=_MAX_CHUNKS, source=_FIELDS,
        )["hits"]["hits"]
    except NotFoundError:
        return [], doc_form
    chunks = sorted((h["_source"] for h in hits), key=lambda c: (c.get("part", 0), c.get("position", 0)))
    if doc_form != "hierarchical_model":
        return [_segment(chunk, n, chunk["content"]) for n, chunk in enumerate(chunks, 1)], doc_form
    parents: dict[str, dict[str, Any]] = {}
    for chunk in chunks:
        parent = parents.get(chunk["parent_id"])
        if parent is None:
            parent = parents[chunk["parent_id"]] = _segment(chunk, len(parents) + 1, chunk.get("parent_content") or "")
            parent["id"] = parent["index_node_id"] = chunk["parent_id"]
        parent["child_chunks"].append({
            "id": chunk["segment_id"], "segment_id": chunk["parent_id"], "content": chunk["content"],
            "position": len(parent["child_chunks"]) + 1, "word_count": chunk.get("word_count", 0),
            "tokens": chunk.get("tokens", 0), "type": "automatic",
            "created_at": parent["created_at"], "updated_at": parent["created_at"],
        })
    return list(parents.values()), doc_form


def _segment(chunk: dict[str, Any], position: int, content: str) -> dict[str, Any]:
    """Dify's segment object of an indexed chunk."""
    indexed = int(datetime.fromisoformat(chunk["indexed_at"]).timestamp()) if chunk.get("indexed_at") else 0
    return {
        "id": chunk["segment_id"], "position": position, "document_id": chunk["document_id"],
        "content": content, "sign_content": content, "answer": None,
        "word_count": chunk.get("word_count", len(content)), "tokens": chunk.get("tokens", 0), "keywords": [],
        "index_node_id": chunk["segment_id"], "index_node_hash": chunk.get("content_hash", ""), "hit_count": 0,
        "enabled": True, "disabled_at": None, "disabled_by": None, "status": "completed",
        "created_by": "api", "created_at": indexed, "updated_at": indexed, "updated_by": "api",
        "indexing_at": indexed, "completed_at": indexed, "error": None, "stopped_at": None,
        "child_chunks": [], "page": chunk.get("page"),
    }
