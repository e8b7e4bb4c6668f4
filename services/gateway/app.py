"""HTTP API (OpenAPI at /docs), shaped like Dify's dataset service API."""

from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

import orjson
from elasticsearch import Elasticsearch
from fastapi import Depends, FastAPI, File, Form, Header, HTTPException, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload

from schemas import DocumentState, DocumentStatus, IndexingSpec, Priority, ProcessRule, document_key
from schemas.documents import Metadata, MetadataKey
from schemas.envelope import Id
from services.embedder.models import EmbeddingSettings, check_model, load_provider
from services.embedder.providers import EmbeddingProvider
from services.estimate.estimator import Estimator
from services.extractor.settings import ExtractorSettings
from services.extractor.parsers import UnextractableDocument
from services.gateway.api_keys import ApiKeys
from services.gateway.body_limit import BodyLimit
from services.gateway.publisher import DocumentPublisher, Upsert
from services.gateway.settings import GatewaySettings
from services.projector.store import StateStore
from services.runtime.datasets import DatasetModels
from services.runtime.elasticsearch_client import elasticsearch_client
from services.runtime.heartbeat import last_beats
from services.runtime.redis_client import redis_client
from services.runtime.revisions import RevisionsExhausted
from services.runtime.serving import ServingRevisions
from services.runtime.settings import Settings
from services.search.hybrid import HybridSearch, Mode, Scope
from services.search.rerank import CohereReranker
from services.search.settings import SearchSettings

MAX_QUERY_CHARS = 4096
MAX_NAME_CHARS = 512  # as DocumentUpserted.name
log = logging.getLogger(__name__)


class DocumentOptions(BaseModel):
    indexing_technique: Literal["high_quality", "economy"] = "high_quality"
    process_rule: ProcessRule = Field(default_factory=ProcessRule)
    doc_form: Literal["text_model", "hierarchical_model"] | None = None
    embedding_model: str | None = None
    metadata: Metadata = Field(default_factory=dict)

    def indexing(self) -> IndexingSpec:
        doc_form = self.doc_form or ("hierarchical_model" if self.process_rule.mode == "hierarchical" else "text_model")
        try:
            return IndexingSpec(
                process_rule=self.process_rule,
                indexing_technique=self.indexing_technique,
                doc_form=doc_form,
                embedding_model=self.embedding_model,
            )
        except ValidationError as exc:
            raise HTTPException(422, exc.errors(include_url=False, include_context=False)) from exc


class CreateByText(DocumentOptions):
    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    text: str
    document_id: Id | None = None


class UpdateByText(DocumentOptions):
    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_CHARS)
    text: str


class FileOptions(DocumentOptions):
    document_id: Id | None = None


class Accepted(BaseModel):
    document_id: str
    revision: int
    status: str = "waiting"
    batch: str
    unchanged: bool = Field(default=False, description="the document already had this content and options: "
                            "no new revision, the current one's status")
    content_hash: str | None = None


class RetrieveRequest(BaseModel):
    # Bounded: a huge query is thousands of terms, each a posting-list scan on every shard.
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    dataset_id: Id | None = Field(default=None, description="/v1/retrieve only: one dataset, or all of the tenant's")
    top_k: int = Field(default=5, ge=1, le=100)
    mode: Mode = "hybrid"
    score_threshold: float | None = Field(default=None, description="records scoring below it are left out")
    document_ids: list[Id] = Field(default_factory=list, max_length=100, description="only these documents")
    rerank: bool = Field(default=False, description="reorder the candidates by the configured rerank model")
    metadata: dict[MetadataKey, str | int | float | bool] = Field(
        default_factory=dict, max_length=20, description="only documents whose metadata has each of these values",
    )

    def scope(self, tenant: str, dataset_id: str | None) -> Scope:
        return Scope(tenant, dataset_id, tuple(self.document_ids), tuple(sorted(self.metadata.items())))


class ModelSwitch(BaseModel):
    embedding_model: str = Field(min_length=1, max_length=128)


class Services:
    """Built on first use, so the app starts without touching Kafka, Redis or the model."""

    def __init__(self, settings: Settings, gateway: GatewaySettings):
        self.settings = settings
        self.gateway = gateway
        self._providers: dict[str, EmbeddingProvider] = {}

    @cached_property
    def publisher(self) -> DocumentPublisher:
        return DocumentPublisher(self.settings, self.states)

    @cached_property
    def api_keys(self) -> ApiKeys:
        return ApiKeys(redis_client(self.settings), self.settings.keys)

    @cached_property
    def states(self) -> StateStore:
        return StateStore(redis_client(self.settings), self.settings.keys)

    @cached_property
    def es(self) -> Elasticsearch:
        return elasticsearch_client(self.settings)

    @cached_property
    def embedding(self) -> EmbeddingSettings:
        return EmbeddingSettings()

    @cached_property
    def datasets(self) -> DatasetModels:
        return DatasetModels(redis_client(self.settings), self.settings.keys)

    def provider(self, model: str) -> EmbeddingProvider:
        """A model to embed queries with, loaded once (422 for a name nobody knows)."""
        if model not in self._providers:
            try:
                self._providers[model] = load_provider(model, self.embedding)
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from exc
        return self._providers[model]

    @cached_property
    def estimator(self) -> Estimator:
        return Estimator(ExtractorSettings().sandbox(), self.embedding)

    @cached_property
    def search(self) -> HybridSearch:
        search = SearchSettings()
        reranker = None
        if search.rerank_model:
            reranker = CohereReranker(search.rerank_model, self.embedding.cohere_api_key,
                                      self.embedding.cohere_base_url, search.rerank_timeout_seconds)
        return HybridSearch(
            self.es, self.settings.topic_prefix, self.provider, self.datasets.indexed, self.serving_revisions,
            search.fuse(), reranker, search.corroboration,
        )

    @cached_property
    def serving(self) -> ServingRevisions:
        return ServingRevisions(redis_client(self.settings), self.settings.keys)

    def serving_revisions(self, document_keys: Iterable[str]) -> dict[str, int]:
        """What the indexer serves; for documents indexed before it kept that record, what their
        projected state says."""
        keys = list(document_keys)
        served = self.serving.serving(keys)
        earlier = [key for key in keys if key not in served]
        return served | (self.states.searchable_revisions(earlier) if earlier else {})


def batch_header(x_batch_id: Annotated[str | None, Header(max_length=64)] = None) -> str:
    """The upload batch a write belongs to: the caller's X-Batch-Id, or a new one."""
    return x_batch_id or uuid.uuid4().hex


Batch = Annotated[str, Depends(batch_header)]


def priority_header(x_priority: Annotated[Priority, Header()] = Priority.INTERACTIVE) -> Priority:
    """The lane of a write: interactive unless the caller's X-Priority says bulk (an import)."""
    return x_priority


RequestPriority = Annotated[Priority, Depends(priority_header)]


def create_app(settings: Settings | None = None) -> FastAPI:
    services = Services(settings or Settings(), GatewaySettings())
    app = FastAPI(title="indexflow gateway", version="1", description=__doc__)
    app.add_middleware(BodyLimit, limit_for=services.gateway.body_limit)

    def deps() -> Services:
        return services

    @app.exception_handler(RevisionsExhausted)
    async def revisions_exhausted(_request: Request, exc: RevisionsExhausted) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(exc)})

    if services.settings.auth == "open":
        log.warning(
            "AUTHENTICATION IS OFF (INDEXFLOW_AUTH=open): every caller may act as any tenant it names in "
            "X-Tenant-Id. Set INDEXFLOW_AUTH=api_keys anywhere but a laptop."
        )

    def tenant_header(
        authorization: Annotated[str | None, Header()] = None,
        x_tenant_id: Annotated[Id | None, Header()] = None,
        s: Services = Depends(deps),
    ) -> str:
        """The caller's tenant: the one its API key is bound to (or, in open mode, the one it names)."""
        if s.settings.auth == "open":
            return x_tenant_id or "default"
        scheme, _, key = (authorization or "").partition(" ")
        tenant = s.api_keys.tenant_of(key.strip()) if scheme.lower() == "bearer" and key.strip() else None
        if tenant is None:
            raise HTTPException(401, "a valid API key is required: Authorization: Bearer <key>",
                                headers={"WWW-Authenticate": "Bearer"})
        if x_tenant_id is not None and x_tenant_id != tenant:
            raise HTTPException(403, f"this API key belongs to another tenant than {x_tenant_id}")
        return tenant

    def require_document(s: Services, tenant: str, dataset_id: str, document_id: str) -> None:
        """The document exists and belongs to the dataset in the URL."""
        if s.publisher.dataset_of(tenant, document_id) != dataset_id:
            raise HTTPException(404, f"document {document_id} not found in dataset {dataset_id}")

    def claim_id(s: Services, tenant: str, dataset_id: str, document_id: str | None) -> None:
        """A document id names one document of a tenant: it cannot be reused in another dataset."""
        owner = s.publisher.dataset_of(tenant, document_id) if document_id else None
        if owner is not None and owner != dataset_id:
            raise HTTPException(409, f"document {document_id} already belongs to dataset {owner}")

    @app.get("/healthz")
    def health(response: Response, s: Services = Depends(deps)) -> dict:
        """Ready when Kafka, Elasticsearch and the state Redis answer (503 otherwise); with how long
        ago each service last showed life."""
        report = check_dependencies(s)
        if not all(report["dependencies"].values()):
            response.status_code = 503
        return report

    @app.post("/v1/datasets/{dataset_id}/document/create-by-text", response_model=Accepted)
    def create_by_text(
        dataset_id: Id, body: CreateByText, batch: Batch, priority: RequestPriority,
        tenant: str = Depends(tenant_header), s: Services = Depends(deps),
    ) -> Accepted:
        claim_id(s, tenant, dataset_id, body.document_id)
        upsert = s.publisher.upsert(
            tenant_id=tenant, dataset_id=dataset_id, document_id=body.document_id, name=body.name,
            indexing=_indexing(s, tenant, dataset_id, body), metadata=body.metadata, batch=batch, text=body.text,
            priority=priority,
        )
        return _accepted(upsert, batch)

    @app.post("/v1/datasets/{dataset_id}/document/estimate")
    async def estimate(
        dataset_id: Id, request: Request, tenant: str = Depends(tenant_header), s: Services = Depends(deps)
    ) -> dict:
        """What indexing a text (JSON, as create-by-text) or a file (multipart, as create-by-file)
        would make: segments, tokens, price for the dataset's model, the first segments. Nothing is
        stored."""
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form()
            upload = form.get("file")
            if not isinstance(upload, StarletteUpload):
                raise HTTPException(422, "a 'file' part is required")
            options = _parse_options(str(form.get("data", "{}")), FileOptions)
            indexing = _indexing(s, tenant, dataset_id, options, claim=False)
            return await run_in_threadpool(_estimate_file, s, upload, indexing)
        try:
            body = CreateByText.model_validate(await request.json())
        except ValidationError as exc:
            raise HTTPException(422, exc.errors(include_url=False, include_context=False)) from exc
        except ValueError as exc:
            raise HTTPException(422, f"not JSON: {exc}") from exc
        indexing = _indexing(s, tenant, dataset_id, body, claim=False)
        return await run_in_threadpool(_estimated, lambda: s.estimator.from_text(body.name, body.text, indexing))

    @app.post("/v1/datasets/{dataset_id}/embedding-model")
    def switch_embedding_model(
        dataset_id: Id, body: ModelSwitch, tenant: str = Depends(tenant_header), s: Services = Depends(deps)
    ) -> dict:
        """Move the dataset to another model without downtime: new documents take it at once, and
        every document is re-embedded as a new revision while its current one stays searchable
        (search covers both models until the last document has moved)."""
        _check_model(body.embedding_model)
        s.datasets.switch(tenant, dataset_id, body.embedding_model)
        moved = sum(
            s.publisher.reembed(tenant, state.document_id, body.embedding_model)
            for state in s.states.dataset(tenant, dataset_id)
            if state.status is not DocumentStatus.DELETED
        )
        return {"embedding_model": body.embedding_model, "documents": moved}

    @app.post("/v1/datasets/{dataset_id}/document/create-by-file", response_model=Accepted)
    def create_by_file(
        dataset_id: Id, batch: Batch, priority: RequestPriority, file: UploadFile = File(...),
        data: str = Form("{}"), tenant: str = Depends(tenant_header), s: Services = Depends(deps),
    ) -> Accepted:
        options = _parse_options(data, FileOptions)
        claim_id(s, tenant, dataset_id, options.document_id)
        return _upload(s, tenant, dataset_id, options.document_id, file, options, batch, priority)

    @app.post("/v1/datasets/{dataset_id}/documents/{document_id}/update-by-text", response_model=Accepted)
    def update_by_text(
        dataset_id: Id, document_id: Id, body: UpdateByText, batch: Batch, priority: RequestPriority,
        tenant: str = Depends(tenant_header), s: Services = Depends(deps),
    ) -> Accepted:
        require_document(s, tenant, dataset_id, document_id)
        name = body.name or _current_name(s, tenant, document_id)
        upsert = s.publisher.upsert(
            tenant_id=tenant, dataset_id=dataset_id, document_id=document_id, name=name,
            indexing=_indexing(s, tenant, dataset_id, body), metadata=body.metadata, batch=batch, text=body.text,
            priority=priority,
        )
        return _accepted(upsert, batch)

    @app.post("/v1/datasets/{dataset_id}/documents/{document_id}/update-by-file", response_model=Accepted)
    def update_by_file(
        dataset_id: Id, document_id: Id, batch: Batch, priority: RequestPriority, file: UploadFile = File(...),
        data: str = Form("{}"), tenant: str = Depends(tenant_header), s: Services = Depends(deps),
    ) -> Accepted:
        require_document(s, tenant, dataset_id, document_id)
        return _upload(s, tenant, dataset_id, document_id, file, _parse_options(data, FileOptions), batch, priority)

    @app.delete("/v1/datasets/{dataset_id}/documents/{document_id}")
    def delete_document(
        dataset_id: Id, document_id: Id, priority: RequestPriority, tenant: str = Depends(tenant_header),
        s: Services = Depends(deps),
    ) -> dict:
        require_document(s, tenant, dataset_id, document_id)
        event = s.publisher.delete(tenant, dataset_id, document_id, priority)
        return {"result": "success", "document_id": document_id, "revision": event.revision}

    @app.post("/v1/datasets/{dataset_id}/documents/{document_id}/{command}")
    def document_command(
        dataset_id: Id, document_id: Id, command: Literal["pause", "resume", "cancel", "retry"],
        priority: RequestPriority, tenant: str = Depends(tenant_header), s: Services = Depends(deps),
    ) -> dict:
        require_document(s, tenant, dataset_id, document_id)
        if command == "retry":
            again = s.publisher.retry(tenant, document_id, priority)
            if again is None:
                raise HTTPException(404, f"document {document_id} not found in dataset {dataset_id}")
            return {"result": "accepted", "command": command, "revision": again.revision}
        revision = s.publisher.latest_revision(tenant, document_id)
        s.publisher.command(tenant, dataset_id, document_id, revision, command, priority)
        return {"result": "accepted", "command": command, "revision": revision}

    @app.get("/v1/datasets/{dataset_id}/documents/{document_id}", response_model=DocumentState)
    def get_document(
        dataset_id: Id, document_id: Id, tenant: str = Depends(tenant_header), s: Services = Depends(deps)
    ) -> DocumentState:
        state = s.states.get(document_key(tenant, document_id))
        if state is None or state.dataset_id != dataset_id:
            raise HTTPException(404, f"document {document_id} not found")
        return state

    @app.get("/v1/datasets/{dataset_id}/documents")
    def list_documents(dataset_id: Id, tenant: str = Depends(tenant_header), s: Services = Depends(deps)) -> dict:
        states = s.states.dataset(tenant, dataset_id)
        return {"data": [st.model_dump(mode="json") for st in states], "total": len(states)}

    @app.get("/v1/datasets/{dataset_id}/documents/{batch}/indexing-status")
    def batch_status(batch: str, dataset_id: Id, tenant: str = Depends(tenant_header), s: Services = Depends(deps)) -> dict:
        keys = s.publisher.batch_documents(tenant, batch)
        known = {st.key: st for st in s.states.get_many(keys)}
        data = []
        for key in keys:  # only the batch's documents of the dataset in the URL
            document_id = key.split("/", 1)[1]
            if key in known:
                if known[key].dataset_id == dataset_id:
                    data.append(known[key].model_dump(mode="json"))
            elif s.publisher.dataset_of(tenant, document_id) == dataset_id:
                data.append({"document_id": document_id, "status": "waiting"})
        return {"data": data, "total": len(data)}

    @app.post("/v1/datasets/{dataset_id}/retrieve")
    def retrieve(dataset_id: Id, body: RetrieveRequest, tenant: str = Depends(tenant_header), s: Services = Depends(deps)) -> dict:
        return _retrieve(s, body, body.scope(tenant, dataset_id))

    @app.post("/v1/retrieve")
    def retrieve_across(body: RetrieveRequest, tenant: str = Depends(tenant_header), s: Services = Depends(deps)) -> dict:
        return _retrieve(s, body, body.scope(tenant, body.dataset_id))

    return app


def check_dependencies(s: Services) -> dict:
    dependencies = {"kafka": s.publisher.producer.broker_reachable()}
    try:
        dependencies["elasticsearch"] = bool(s.es.ping())
    except Exception:  # noqa: BLE001 - any failure means not ready
        dependencies["elasticsearch"] = False
    services: dict[str, float] = {}
    try:
        dependencies["redis"] = bool(s.states.ping())
        services = last_beats(redis_client(s.settings), s.settings.keys)
    except Exception:  # noqa: BLE001
        dependencies["redis"] = False
    return {"ok": all(dependencies.values()), "dependencies": dependencies, "seconds_since_heartbeat": services}


def _parse_options(data: str, model: type[BaseModel]):
    try:
        return model.model_validate(orjson.loads(data or "{}"))
    except (orjson.JSONDecodeError, ValidationError) as exc:
        raise HTTPException(422, f"invalid 'data' field: {exc}") from exc


def _current_name(s: Services, tenant: str, document_id: str) -> str:
    state = s.states.get(document_key(tenant, document_id))
    return state.name if state and state.name else document_id


def _upload(
    s: Services, tenant: str, dataset_id: str, document_id: str | None, file: UploadFile, options: DocumentOptions,
    batch: str, priority: Priority,
) -> Accepted:
    name = file.filename or "upload"
    if len(name) > MAX_NAME_CHARS:  # checked before anything is stored
        raise HTTPException(422, f"file name of {len(name)} characters, over the {MAX_NAME_CHARS} limit")
    # The body limit bounds the whole form; this names the file's own limit. Starlette has spooled
    # the file to disk as it arrived, and it is streamed on from there.
    limit = s.gateway.max_upload_bytes
    if file.size is not None and file.size > limit:
        raise HTTPException(413, f"file of {file.size:,} bytes, over the {limit:,} byte upload limit")
    upsert = s.publisher.upsert(
        tenant_id=tenant, dataset_id=dataset_id, document_id=document_id, name=name,
        indexing=_indexing(s, tenant, dataset_id, options), metadata=options.metadata, batch=batch,
        file=file.file, size=file.size,
        mime_type=file.content_type if file.content_type != "application/octet-stream" else None,
        priority=priority,
    )
    return _accepted(upsert, batch)


def _retrieve(s: Services, body: RetrieveRequest, scope: Scope) -> dict:
    if body.rerank and s.search.reranker is None:
        raise HTTPException(422, "reranking is not configured: set INDEXFLOW_SEARCH_RERANK_MODEL (and CO_API_KEY)")
    answer = s.search.search(body.query, scope, body.top_k, body.mode, body.score_threshold, body.rerank)
    response: dict = {
        "query": body.query, "records": [hit.__dict__ for hit in answer.records], "timings": answer.timings.as_dict(),
    }
    if body.rerank:
        response["reranked"] = answer.reranked
        if answer.rerank_error is not None:
            response["rerank_error"] = answer.rerank_error
    return response


def _check_model(name: str) -> None:
    try:
        check_model(name)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc


def _estimate_file(s: Services, upload: StarletteUpload, indexing: IndexingSpec) -> dict:
    name = upload.filename or "upload"
    with tempfile.NamedTemporaryFile(prefix="indexflow-estimate-", suffix=Path(name).suffix[:16]) as copy:
        shutil.copyfileobj(upload.file, copy, 2**20)
        copy.flush()
        return _estimated(lambda: s.estimator.from_file(name, Path(copy.name), indexing))


def _estimated(make) -> dict:
    try:
        return make().as_dict()
    except UnextractableDocument as exc:
        raise HTTPException(422, f"cannot estimate: {exc}") from exc


def _indexing(
    s: Services, tenant: str, dataset_id: str, options: DocumentOptions, claim: bool = True
) -> IndexingSpec:
    """The document's indexing spec, embedding with its dataset's model: the first document's (or
    the default) becomes the dataset's, later ones inherit it, and naming another is refused. An
    estimate (``claim=False``) reads the dataset's model without giving it one."""
    spec = options.indexing()
    if spec.indexing_technique == "economy":
        return spec
    requested = spec.embedding_model
    if requested is not None:
        _check_model(requested)  # before the dataset takes it
    wanted = requested or s.embedding.default_model
    if claim:
        model = s.datasets.claim(tenant, dataset_id, wanted)
    else:
        model = s.datasets.configured(tenant, dataset_id) or wanted
    if requested is not None and requested != model:
        raise HTTPException(
            409, f"dataset {dataset_id} embeds with {model}; a document of it cannot use {requested}"
        )
    return spec.model_copy(update={"embedding_model": model})


def _accepted(upsert: Upsert, batch: str) -> Accepted:
    event = upsert.event
    status = upsert.state.status if upsert.state is not None and upsert.state.revision == event.revision else "waiting"
    return Accepted(document_id=event.document_id, revision=event.revision, batch=batch,
                    status=status, unchanged=upsert.unchanged, content_hash=event.content_hash)
