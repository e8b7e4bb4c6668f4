"""Documents of a dataset: written by text or file, read, listed, deleted; their batch's progress.
Routes and answers are Dify's Knowledge API's (both of its spellings), with the native fields
(revision, status, content hash) beside Dify's."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, get_args

import orjson
from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from pydantic import BaseModel, Field, ValidationError

from schemas import (
    TERMINAL_STATUSES, DocumentState, DocumentStatus, DocumentUpserted, IndexingSpec, OcrSpec, Priority, document_key,
)
from schemas.documents import Metadata
from schemas.envelope import Id
from services.embedder.models import check_model
from services.gateway import dify
from services.gateway.datasets import DatasetRecord
from services.gateway.errors import ApiError
from services.gateway.publisher import Upsert
from services.gateway.requests import MAX_NAME_CHARS, CreateByText, DocumentOptions, FileOptions, UpdateByText
from services.gateway.services import (
    Batch, Clients, RequestPriority, Services, Tenant, built_in_metadata, claim_id, existing_dataset,
    require_document,
)
from services.gateway.tenant_limits import LimitReached
from services.gateway.tenant_usage import UsageRefused
from services.gateway.visibility import Action, Visibility

ACTIONS = get_args(Action)
REVISION_HEADER = "X-Revision"

router = APIRouter(prefix="/v1/datasets/{dataset_id}")


def _both_spellings(method: str, path: str, deprecated: bool = False):
    """Dify's route and its older underscore spelling, one handler."""
    def register(handler):
        router.add_api_route(path, handler, methods=[method], deprecated=deprecated or None)
        router.add_api_route(path.replace("-", "_"), handler, methods=[method], include_in_schema=False)
        return handler
    return register


@_both_spellings("POST", "/document/create-by-text")
def create_by_text(dataset_id: Id, body: CreateByText, batch: Batch, priority: RequestPriority, tenant: Tenant,
                   s: Clients) -> dict:
    claim_id(s, tenant, dataset_id, body.document_id)
    return write(s, tenant, dataset_id, body.document_id, body, batch, priority, text=body.text, name=body.name)


@_both_spellings("POST", "/document/create-by-file")
def create_by_file(dataset_id: Id, batch: Batch, priority: RequestPriority, tenant: Tenant, s: Clients,
                   file: UploadFile = File(...), data: str = Form("{}")) -> dict:
    options = parse_options(data, FileOptions)
    document_id = options.document_id or options.original_document_id
    if options.original_document_id:
        require_document(s, tenant, dataset_id, options.original_document_id)
    claim_id(s, tenant, dataset_id, document_id)
    return write(s, tenant, dataset_id, document_id, options, batch, priority, file=file)


@_both_spellings("POST", "/documents/{document_id}/update-by-text")
def update_by_text(dataset_id: Id, document_id: Id, body: UpdateByText, batch: Batch, priority: RequestPriority,
                   tenant: Tenant, s: Clients) -> dict:
    require_document(s, tenant, dataset_id, document_id)
    name = body.name or current_name(s, tenant, document_id)
    return write(s, tenant, dataset_id, document_id, body, batch, priority, text=body.text, name=name, update=True)


def update_document(dataset_id: Id, document_id: Id, batch: Batch, priority: RequestPriority, tenant: Tenant,
                    s: Clients, file: UploadFile | None = File(None), data: str = Form("{}")) -> dict:
    """Dify's update of a document by file (multipart): a new file, new settings in ``data``, or
    both; settings alone process the document's current file again under them."""
    require_document(s, tenant, dataset_id, document_id)
    options = parse_options(data, FileOptions)
    if file is not None:
        return write(s, tenant, dataset_id, document_id, options, batch, priority, file=file, update=True)
    event = s.publisher.reprocess(tenant, document_id, batch, priority, lambda current: {
        "indexing": indexing_of(s, tenant, dataset_id, options, current=current),
        "metadata": kept_metadata(options, current)})
    if event is None:
        raise ApiError(404, "Document not found.")
    return accepted(s, tenant, Upsert(event, unchanged=False, state=None), batch)


router.add_api_route("/documents/{document_id}", update_document, methods=["PATCH"])
_both_spellings("POST", "/documents/{document_id}/update-by-file", deprecated=True)(update_document)


@router.delete("/documents/{document_id}", status_code=204)
def delete_document(dataset_id: Id, document_id: Id, priority: RequestPriority, tenant: Tenant,
                    s: Clients) -> Response:
    """204 with no body, as Dify answers; the delete's revision (what a native caller waits for) in
    the X-Revision header."""
    require_document(s, tenant, dataset_id, document_id, live=True)
    event = s.publisher.delete(tenant, dataset_id, document_id, priority)
    s.usage.give_back(tenant, document_id)
    return Response(status_code=204, headers={REVISION_HEADER: str(event.revision)})


@router.get("/documents/{document_id}")
def get_document(dataset_id: Id, document_id: Id, tenant: Tenant, s: Clients, metadata: str = "all") -> dict:
    """The document's state, in Dify's detail shape and the native one. ``metadata``: as Dify's."""
    if metadata not in ("all", "only", "without"):
        raise ApiError(400, f"Invalid metadata value: {metadata}", code="invalid_metadata")
    key = document_key(tenant, document_id)
    state = s.states.get(key)
    if state is None or state.dataset_id != dataset_id:
        raise ApiError(404, "Document not found.")
    if state.status is DocumentStatus.DELETED:  # gone, as Dify says; its last state for whoever waited on it
        raise ApiError(404, "Document not found.", document=state.model_dump(mode="json"))
    upsert = s.publisher.registry.newest_upsert(key)
    visibility = s.visibility.of(tenant, [document_id])[document_id]
    position = s.catalog.position(tenant, dataset_id, document_id)
    built_in = built_in_metadata(s, tenant, dataset_id, [upsert])[document_id] if upsert is not None else None
    shaped = dify.document(document_id, state, upsert, position, visibility, built_in)
    if metadata == "only":
        return {"id": document_id, "doc_type": None, "doc_metadata": shaped["doc_metadata"]}
    rule = _process_rule(upsert.indexing if upsert is not None else None)
    detail = {
        **state.model_dump(mode="json"), **shaped,
        "completed_at": dify.epoch(state.transitions.get(DocumentStatus.COMPLETED)),
        "updated_at": dify.epoch(state.updated_at),
        "indexing_latency": state.indexing_latency,
        "doc_type": None,
        "segment_count": state.segment_count,
        "average_segment_length": dify.average_segment_length(state.word_count, state.segment_count),
        "dataset_process_rule": rule,
        "document_process_rule": rule,
        "doc_language": None,
    }
    if metadata == "without":
        detail.pop("doc_type")
        detail.pop("doc_metadata")
    return detail


@router.get("/documents")
def list_documents(
    dataset_id: Id, tenant: Tenant, s: Clients,
    page: Annotated[int, Query(ge=1)] = 1,
    limit: Annotated[int, Query(ge=1, le=1000, description="Dify's clients ask at most 100")] = 20,
    keyword: Annotated[str | None, Query(max_length=256)] = None,
    status: Annotated[str | None, Query(description="one of Dify's display statuses")] = None,
    deleted: Annotated[bool, Query(description="also the deleted documents, with their last state")] = False,
) -> dict:
    """The dataset's documents, newest first, as Dify pages them (``keyword`` in the name)."""
    existing_dataset(s, tenant, dataset_id)
    if status is not None and status not in dify.DISPLAY_STATUSES:
        raise ApiError(400, f"status must be one of {sorted(dify.DISPLAY_STATUSES)}")
    found = _page(s, tenant, dataset_id, page, limit, keyword, status, deleted) if s.states.indexes_complete() else None
    if found is not None:
        shown, total = found
        positions = s.catalog.positions_of(tenant, dataset_id, [st.document_id for st in shown])
        visibility = s.visibility.of(tenant, [st.document_id for st in shown])
    else:  # every document of the dataset is looked at
        shown, total, positions, visibility = _matching(s, tenant, dataset_id, page, limit, keyword, status, deleted)
    upserts = s.publisher.registry.newest_upserts([st.key for st in shown])
    data = [
        {**st.model_dump(mode="json"),
         **dify.document(st.document_id, st, upserts.get(st.key), positions.get(st.document_id, 0),
                         visibility[st.document_id]),
         "updated_at": dify.epoch(st.updated_at)}
        for st in shown
    ]
    return {"data": data, "has_more": page * limit < total, "limit": limit, "total": total, "page": page}


def _page(
    s: Services, tenant: str, dataset_id: str, page: int, limit: int, keyword: str | None, status: str | None,
    deleted: bool,
) -> tuple[list[DocumentState], int] | None:
    """The page and how many match, from the dataset's sorted sets, or its names held in memory
    for a keyword (None for a dataset too large to hold)."""
    if not keyword:
        return s.states.newest_first(tenant, dataset_id, (page - 1) * limit, limit, deleted=deleted, shown=status)
    found = s.keyword_listing.page(tenant, dataset_id, keyword, status, deleted, (page - 1) * limit, limit)
    if found is None:
        return None
    ids, total = found
    return s.states.get_many(f"{tenant}/{document_id}" for document_id in ids), total


def _matching(
    s: Services, tenant: str, dataset_id: str, page: int, limit: int, keyword: str | None, status: str | None,
    deleted: bool,
) -> tuple[list[DocumentState], int, dict[str, int], dict[str, Visibility]]:
    """The page of the dataset's documents matching the name and display status, how many match,
    and their positions and visibility. Every state is read, as stored (only the page's are built
    into models): a name may match anywhere in it."""
    positions = s.catalog.positions(tenant, dataset_id)
    word = (keyword or "").lower()
    found = [st for st in s.states.dataset_json(tenant, dataset_id)
             if (deleted or st["status"] != DocumentStatus.DELETED) and word in (st.get("name") or "").lower()]
    if status is not None:
        visibility = s.visibility.of(tenant, [st["document_id"] for st in found])
        found = [st for st in found
                 if dify.display_status(DocumentStatus(st["status"]), visibility[st["document_id"]]) == status]
    found.sort(key=lambda st: (positions.get(st["document_id"], 0), st["document_id"]), reverse=True)
    shown = [DocumentState.model_validate(st) for st in found[(page - 1) * limit: page * limit]]
    return shown, len(found), positions, s.visibility.of(tenant, [st.document_id for st in shown])


class DocumentIds(BaseModel):
    document_ids: list[Id] = Field(min_length=1, max_length=1000)


@router.patch("/documents/status/{action}")
def document_status(dataset_id: Id, action: str, body: DocumentIds, tenant: Tenant, s: Clients) -> dict:
    """Dify's enable / disable / archive / un_archive: a disabled or archived document stays
    indexed and listed, and no search returns it. Documents not in the dataset are skipped, as in
    Dify; a document still being indexed cannot be disabled or archived (400 invalid_action)."""
    if action not in ACTIONS:
        raise ApiError(400, f"Invalid action: {action} (one of {', '.join(ACTIONS)})", code="invalid_action")
    existing_dataset(s, tenant, dataset_id)
    states = {st.document_id: st for st in s.states.get_many([document_key(tenant, i) for i in body.document_ids])}
    known = [i for i in body.document_ids if i in states and states[i].dataset_id == dataset_id
             and states[i].status is not DocumentStatus.DELETED]
    if action in ("disable", "archive"):
        busy = [states[i].name or i for i in known if states[i].status not in TERMINAL_STATUSES]
        if busy:
            raise ApiError(400, f"Document: {busy[0]} is being indexed, please try again later", code="invalid_action")
    for document_id in known:
        s.visibility.apply(tenant, dataset_id, document_id, action)
    return {"result": "success"}


@router.post("/documents/states")
def document_states(dataset_id: Id, body: DocumentIds, tenant: Tenant, s: Clients) -> Response:
    """The native states of the documents named that are in the dataset (deleted ones too; one not
    projected yet is left out). What a caller following its own writes polls: it costs the
    documents asked about, where a listing costs the whole dataset."""
    existing_dataset(s, tenant, dataset_id)
    states = [st for st in s.states.as_json(document_key(tenant, i) for i in body.document_ids)
              if st["dataset_id"] == dataset_id]
    return Response(orjson.dumps({"data": states}), media_type="application/json")


@router.get("/documents/{batch}/indexing-status")
def batch_status(batch: str, dataset_id: Id, tenant: Tenant, s: Clients) -> dict:
    """Each document of the upload batch, in the dataset of the URL: Dify's progress fields and the
    native state. 404 for a batch with no document here."""
    written = s.publisher.batch_documents(tenant, batch)
    known = {st.key: st for st in s.states.get_many(list(written))}
    data = []
    for key, revision in written.items():
        document_id = key.split("/", 1)[1]
        state = known.get(key)
        # A document never changes dataset: its state says which, or (not projected yet) its upsert.
        dataset = state.dataset_id if state is not None else s.publisher.dataset_of(tenant, document_id)
        if dataset != dataset_id:
            continue
        if state is not None and state.revision < revision:
            state = None  # the projector has not seen the batch's revision yet: it waits
        native = state.model_dump(mode="json") if state is not None else {
            "document_id": document_id, "revision": revision, "status": "waiting"}
        data.append({**native, **dify.indexing_status(document_id, state)})
    if not data:
        raise ApiError(404, "Documents not found.")
    return {"data": data, "total": len(data)}


# -- shared by the routes above ---------------------------------------------------------------

def parse_options(data: str, model: type[BaseModel]) -> Any:
    try:
        return model.model_validate(orjson.loads(data or "{}"))
    except (orjson.JSONDecodeError, ValidationError) as exc:
        raise ApiError(400, f"invalid 'data' field: {exc}") from exc


def current_name(s: Services, tenant: str, document_id: str) -> str:
    state = s.states.get(document_key(tenant, document_id))
    return state.name if state and state.name else document_id


def write(
    s: Services, tenant: str, dataset_id: str, document_id: str | None, options: DocumentOptions, batch: str,
    priority: Priority, *, text: str | None = None, name: str | None = None, file: UploadFile | None = None,
    update: bool = False,
) -> dict:
    """Publish the document from ``text`` or ``file``. An ``update`` keeps what the body leaves out
    (the rule, the metadata) from the current revision, read under the document's writer lock."""
    if file is not None:
        name = file.filename or "upload"
        if len(name) > MAX_NAME_CHARS:  # checked before anything is stored
            raise ApiError(400, f"file name of {len(name)} characters, over the {MAX_NAME_CHARS} limit")
        # The body limit bounds the whole form; this names the file's own limit. Starlette has
        # spooled the file to disk as it arrived, and it is streamed on from there.
        limit = s.gateway.max_upload_bytes
        if file.size is not None and file.size > limit:
            raise ApiError(413, f"file of {file.size:,} bytes, over the {limit:,} byte upload limit")
    document_id = document_id or str(uuid.uuid4())  # a UUID, as Dify's routes take
    size = (file.size or 0) if file is not None else len((text or "").encode())
    with s.publisher.writing(tenant, document_id):
        current = s.publisher.registry.newest_upsert(document_key(tenant, document_id)) if update else None
        indexing = indexing_of(s, tenant, dataset_id, options, current=current)
        previous = take_room(s, tenant, document_id, size)
        try:
            upsert = s.publisher.upsert(
                tenant_id=tenant, dataset_id=dataset_id, document_id=document_id, name=name or document_id,
                indexing=indexing, metadata=kept_metadata(options, current), batch=batch, priority=priority,
                text=text, file=file.file if file is not None else None, size=file.size if file is not None else None,
                mime_type=file.content_type if file is not None and file.content_type != "application/octet-stream"
                else None,
            )
        except BaseException:
            s.usage.restore(tenant, document_id, previous)
            raise
    return accepted(s, tenant, upsert, batch)


def take_room(s: Services, tenant: str, document_id: str, size: int) -> int | None:
    """Count the document at ``size`` bytes against the tenant's limits (403 past its documents,
    413 past its stored bytes); its previous size, None if it is new."""
    limits = s.limits.of(tenant)
    try:
        return s.usage.take(tenant, document_id, size, limits.documents, limits.bytes)
    except UsageRefused as exc:
        if exc.limit == "documents":
            raise LimitReached(403, "documents", limits.documents) from None
        raise LimitReached(413, "bytes", limits.bytes, f" (a document of {size:,} bytes would pass it)") from None


def check_model_name(name: str) -> None:
    try:
        check_model(name)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from exc


def indexing_of(
    s: Services, tenant: str, dataset_id: str, options: DocumentOptions, claim: bool = True,
    current: DocumentUpserted | None = None,
) -> IndexingSpec:
    """The document's indexing spec under its dataset's settings. The technique is the document's,
    else the dataset's, else high_quality; an update that names no process rule keeps the one
    ``current`` has (as Dify does). The model: the first document's (or the dataset's, or the
    default) becomes the dataset's, later ones inherit it, and naming another is refused. An
    estimate (``claim=False``) reads the dataset's settings without recording anything."""
    record = s.catalog.get(tenant, dataset_id)
    if current is not None and "process_rule" not in options.model_fields_set:
        options = options.model_copy(update={"process_rule": current.indexing.process_rule,
                                             "doc_form": options.doc_form or current.indexing.doc_form})
    technique = options.indexing_technique or (record.indexing_technique if record else None) or "high_quality"
    spec = options.indexing(technique, ocr_of(options, record, current))
    if claim:
        s.catalog.ensure(tenant, dataset_id)
        if record is None or record.chunk_structure is None:  # the first document's form becomes the dataset's
            s.catalog.change(tenant, dataset_id, lambda now: {} if now.chunk_structure is not None else {
                "chunk_structure": spec.doc_form})
        if record is not None and record.retrieval_model is None and options.retrieval_model is not None:
            s.catalog.change(tenant, dataset_id, lambda now: {} if now.retrieval_model is not None else {
                "retrieval_model": options.retrieval_model.model_dump(mode="json")})
    if spec.indexing_technique == "economy":
        return spec
    requested = spec.embedding_model
    if requested is not None:
        check_model_name(requested)  # before the dataset takes it
    wanted = requested or s.embedding.default_model
    if claim:
        model = s.datasets.claim(tenant, dataset_id, wanted)
    else:
        model = s.datasets.configured(tenant, dataset_id) or wanted
    if requested is not None and requested != model:
        raise ApiError(409, f"dataset {dataset_id} embeds with {model}; a document of it cannot use {requested}")
    return spec.model_copy(update={"embedding_model": model})


def ocr_of(options: DocumentOptions, record: DatasetRecord | None, current: DocumentUpserted | None) -> OcrSpec:
    """The body's OCR setting; else, for an update, the document's; else its dataset's; else on."""
    if options.ocr is not None:
        return options.ocr
    if current is not None:
        return current.indexing.ocr
    return (record.ocr if record is not None else None) or OcrSpec()


def kept_metadata(options: DocumentOptions, current: DocumentUpserted | None) -> Metadata:
    """The body's metadata; for an update that carries none (Dify's never does), the document's own."""
    if current is not None and "metadata" not in options.model_fields_set:
        return current.metadata
    return options.metadata


def accepted(s: Services, tenant: str, upsert: Upsert, batch: str) -> dict:
    """Dify's ``{"document", "batch"}``, with the native answer's fields beside them."""
    event = upsert.event
    state = upsert.state if upsert.state is not None and upsert.state.revision == event.revision else None
    position = s.catalog.position(tenant, event.dataset_id, event.document_id)
    visibility = s.visibility.of(tenant, [event.document_id])[event.document_id]
    return {
        "document": dify.document(event.document_id, state, event, position, visibility),
        "batch": batch,
        "document_id": event.document_id,
        "revision": event.revision,
        "status": state.status if state is not None else "waiting",
        "unchanged": upsert.unchanged,
        "content_hash": event.content_hash,
    }


def _process_rule(indexing: IndexingSpec | None) -> dict:
    if indexing is None:
        return {}
    rule = indexing.process_rule.model_dump(mode="json")
    return {"mode": rule.pop("mode"), "rules": rule}
