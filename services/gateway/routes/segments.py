"""A document's segments as Dify lists and edits them: the chunks of the revision search serves, in
order (for a hierarchical document each parent with its child chunks, what search matches). An
edit publishes the document's next revision and answers once it is searchable, as Dify's do."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from schemas import DocumentStatus, DocumentUpserted, document_key
from schemas.edited import SEGMENT_LIST_MIME, GivenChild, GivenSegment, SegmentList
from schemas.envelope import Id
from services.gateway import segment_edits as edits
from services.gateway.errors import ApiError
from services.gateway.requests import ChildChunkText, NewSegments, UpdateSegment
from services.gateway.revision_chunks import revision_chunks
from services.gateway.services import Clients, Services, Tenant, require_document

router = APIRouter(prefix="/v1/datasets/{dataset_id}/documents/{document_id}/segments")
SegmentStatuses = Annotated[
    list[str] | None, Query(description="Dify's segment statuses: indexed ones are 'completed'")]
_POLL_SECONDS = 0.05


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
    return {"data": _one(segments, segment_id), "doc_form": doc_form}


@router.post("")
def add_segments(dataset_id: Id, document_id: Id, body: NewSegments, tenant: Tenant, s: Clients) -> dict:
    new = {edits.new_id(): segment.content for segment in body.segments}
    given, status = edit(s, tenant, dataset_id, document_id, edits.adding(new))
    segments, doc_form = answered(s, tenant, document_id, given, status)
    return {"data": [_one(segments, id_) for id_ in new], "doc_form": doc_form}


@router.post("/{segment_id}")  # Dify updates a segment by POST
def update_segment(dataset_id: Id, document_id: Id, segment_id: str, body: UpdateSegment, tenant: Tenant,
                   s: Clients) -> dict:
    change = body.segment
    given, status = edit(s, tenant, dataset_id, document_id, edits.updating(
        segment_id, change.content, change.enabled, change.regenerate_child_chunks))
    segments, doc_form = answered(s, tenant, document_id, given, status)
    return {"data": _one(segments, segment_id), "doc_form": doc_form}


@router.delete("/{segment_id}", status_code=204)
def delete_segment(dataset_id: Id, document_id: Id, segment_id: str, tenant: Tenant, s: Clients) -> Response:
    edit(s, tenant, dataset_id, document_id, edits.removing(segment_id))
    return Response(status_code=204)


@router.get("/{segment_id}/child_chunks")
def list_child_chunks(
    dataset_id: Id, document_id: Id, segment_id: str, tenant: Tenant, s: Clients,
    page: Annotated[int, Query(ge=1)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    keyword: Annotated[str | None, Query(max_length=256)] = None,
) -> dict:
    require_document(s, tenant, dataset_id, document_id, live=True)
    children = _one(served_segments(s, tenant, document_id)[0], segment_id)["child_chunks"]
    if keyword:
        children = [child for child in children if keyword.lower() in child["content"].lower()]
    return {"data": children[(page - 1) * limit: page * limit], "total": len(children),
            "total_pages": -(-len(children) // limit), "page": page, "limit": limit}


@router.post("/{segment_id}/child_chunks")
def add_child_chunk(dataset_id: Id, document_id: Id, segment_id: str, body: ChildChunkText, tenant: Tenant,
                    s: Clients) -> dict:
    child = GivenChild(id=edits.new_id(), content=body.content)
    given, status = edit(s, tenant, dataset_id, document_id, edits.adding_child(segment_id, child))
    return {"data": _child(answered(s, tenant, document_id, given, status)[0], segment_id, child.id)}


@router.patch("/{segment_id}/child_chunks/{child_chunk_id}")
def update_child_chunk(dataset_id: Id, document_id: Id, segment_id: str, child_chunk_id: str, body: ChildChunkText,
                       tenant: Tenant, s: Clients) -> dict:
    given, status = edit(s, tenant, dataset_id, document_id,
                         edits.updating_child(segment_id, child_chunk_id, body.content))
    return {"data": _child(answered(s, tenant, document_id, given, status)[0], segment_id, child_chunk_id)}


@router.delete("/{segment_id}/child_chunks/{child_chunk_id}", status_code=204)
def delete_child_chunk(dataset_id: Id, document_id: Id, segment_id: str, child_chunk_id: str, tenant: Tenant,
                       s: Clients) -> Response:
    edit(s, tenant, dataset_id, document_id, edits.removing_child(segment_id, child_chunk_id))
    return Response(status_code=204)


# -- editing --------------------------------------------------------------------------------------

def edit(s: Services, tenant: str, dataset_id: str, document_id: str,
         change: edits.Edit) -> tuple[SegmentList, str]:
    """Publish the document's segments, changed, as its next revision and wait until search serves
    it. The writer lock spans reading the segments to publishing, so concurrent edits all land."""
    require_document(s, tenant, dataset_id, document_id, live=True)
    if not s.visibility.of(tenant, [document_id])[document_id].enabled:
        raise ApiError(404, "Document is disabled.")
    key = document_key(tenant, document_id)
    with s.publisher.writing(tenant, document_id):
        upsert = s.publisher.registry.newest_upsert(key)
        if upsert is None:
            raise ApiError(404, "Document not found.")
        given = change(current_segments(s, upsert), upsert.indexing)
        event = s.publisher.put_segments(upsert, given)
    return given, searchable(s, key, event.revision)


def current_segments(s: Services, upsert: DocumentUpserted) -> SegmentList:
    """The segments the document's newest revision has: the list it was given, or the chunks its
    text was split into (which are known once that revision is indexed)."""
    if upsert.mime_type == SEGMENT_LIST_MIME:
        return s.publisher.segment_list(upsert)
    if s.serving_revisions([upsert.key]).get(upsert.key) != upsert.revision:
        raise ApiError(404, "Document is not completed.")
    chunks = revision_chunks(s, upsert.tenant_id, upsert.document_id, upsert.revision)
    return edits.segment_list_of(chunks, upsert.indexing.doc_form == "hierarchical_model")


def searchable(s: Services, key: str, revision: int) -> str:
    """Dify's status of the edited segments: 'completed' once search serves ``revision`` (or a newer
    one), 'error' if it failed, 'indexing' if it is not done within the gateway's wait."""
    deadline = time.monotonic() + s.gateway.edit_wait_seconds
    while True:
        if s.serving_revisions([key]).get(key, 0) >= revision:
            return "completed"
        state = s.states.get(key)
        if state is not None and state.revision >= revision and state.status in (
                DocumentStatus.ERROR, DocumentStatus.CANCELLED):
            return "error"
        if time.monotonic() >= deadline:
            return "indexing"
        time.sleep(_POLL_SECONDS)


def answered(s: Services, tenant: str, document_id: str, given: SegmentList,
             status: str) -> tuple[list[dict[str, Any]], str]:
    """The edited document's segments as Dify answers an edit: as search serves them once indexed;
    as they were given, with their status, otherwise."""
    segments, doc_form = served_segments(s, tenant, document_id)
    if status == "completed":
        return segments, doc_form
    return [_pending(segment, document_id, n, status) for n, segment in enumerate(given.segments, 1)], doc_form


# -- reading --------------------------------------------------------------------------------------

def served_segments(s: Services, tenant: str, document_id: str) -> tuple[list[dict[str, Any]], str]:
    """The segments of the document's searchable revision, in order, and its doc_form."""
    key = document_key(tenant, document_id)
    upsert = s.publisher.registry.newest_upsert(key)
    doc_form = upsert.indexing.doc_form if upsert is not None else "text_model"
    revision = s.serving_revisions([key]).get(key)
    chunks = revision_chunks(s, tenant, document_id, revision) if revision is not None else []
    if doc_form != "hierarchical_model":
        return [_segment(chunk, n, chunk["content"]) for n, chunk in enumerate(chunks, 1)], doc_form
    parents: dict[str, dict[str, Any]] = {}
    for chunk in chunks:
        parent_id = chunk.get("parent_stable_id") or chunk["parent_id"]
        parent = parents.get(parent_id)
        if parent is None:
            parent = parents[parent_id] = _segment(chunk, len(parents) + 1, chunk.get("parent_content") or "")
            parent["id"] = parent_id
        parent["child_chunks"].append({
            "id": edits.stable_id_of(chunk), "segment_id": parent_id, "content": chunk["content"],
            "position": len(parent["child_chunks"]) + 1, "word_count": chunk.get("word_count", 0),
            "tokens": chunk.get("tokens", 0), "type": "automatic",
            "created_at": parent["created_at"], "updated_at": parent["created_at"],
        })
    return list(parents.values()), doc_form


def _one(segments: list[dict[str, Any]], segment_id: str) -> dict[str, Any]:
    found = next((seg for seg in segments if seg["id"] == segment_id), None)
    if found is None:
        raise ApiError(404, "Segment not found.")
    return found


def _child(segments: list[dict[str, Any]], segment_id: str, child_id: str) -> dict[str, Any]:
    found = next((c for c in _one(segments, segment_id)["child_chunks"] if c["id"] == child_id), None)
    if found is None:
        raise ApiError(404, "Child chunk not found.")
    return found


def _segment(chunk: dict[str, Any], position: int, content: str) -> dict[str, Any]:
    """Dify's segment object of an indexed chunk."""
    indexed = int(datetime.fromisoformat(chunk["indexed_at"]).timestamp()) if chunk.get("indexed_at") else 0
    return {
        "id": edits.stable_id_of(chunk), "position": position, "document_id": chunk["document_id"],
        "content": content, "sign_content": content, "answer": None,
        "word_count": chunk.get("word_count", len(content.split())), "tokens": chunk.get("tokens", 0),
        "keywords": [], "index_node_id": chunk["segment_id"], "index_node_hash": chunk.get("content_hash", ""),
        "hit_count": 0, "enabled": chunk.get("enabled", True), "disabled_at": None, "disabled_by": None,
        "status": "completed", "created_by": "api", "created_at": indexed, "updated_at": indexed,
        "updated_by": "api", "indexing_at": indexed, "completed_at": indexed, "error": None, "stopped_at": None,
        "child_chunks": [], "page": chunk.get("page"),
        # Dify's images of a segment and its LLM summary: indexflow keeps neither.
        "attachments": [], "summary": None,
    }


def _pending(segment: GivenSegment, document_id: str, position: int, status: str) -> dict[str, Any]:
    """Dify's segment object of an edited segment search does not serve yet."""
    answer = _segment({"segment_id": segment.id, "document_id": document_id, "enabled": segment.enabled,
                       "page": segment.page}, position, segment.content)
    answer["child_chunks"] = [
        {"id": child.id, "segment_id": segment.id, "content": child.content, "position": n,
         "word_count": len(child.content.split()), "tokens": 0, "type": "automatic", "created_at": 0, "updated_at": 0}
        for n, child in enumerate(segment.children, 1)
    ]
    return {**answer, "status": status, "completed_at": None}
