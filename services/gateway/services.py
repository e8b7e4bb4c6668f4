"""What every route of the gateway is handed: the clients (built once, on first use), the caller's
tenant, its upload batch and lane."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from functools import cached_property
from typing import Annotated, Any

import redis.asyncio
from elasticsearch import Elasticsearch
from fastapi import Depends, Header, Request

from schemas import DocumentStatus, DocumentUpserted, Priority, document_key
from schemas.envelope import Id
from services.embedder.models import EmbeddingSettings, load_provider
from services.embedder.providers import EmbeddingProvider
from services.estimate.estimator import Estimator
from services.estimate.queue import EstimateQueue
from services.extractor.settings import ExtractorSettings
from services.gateway import dify
from services.gateway.api_keys import ApiKeys
from services.gateway.dataset_tags import DatasetTags
from services.gateway.datasets import DatasetCatalog, DatasetRecord
from services.gateway.download_links import DownloadLinks, signing_key
from services.gateway.errors import ApiError
from services.gateway.keyword_listing import KeywordListing
from services.gateway.pipeline_history import PipelineHistory
from services.gateway.pipeline_view import PipelineView
from services.gateway.publisher import DocumentPublisher
from services.gateway.readiness import DependencyChecks
from services.gateway.search_workers import SearchWorkers
from services.gateway.settings import GatewaySettings
from services.gateway.tenant_limits import TenantLimits
from services.gateway.tenant_slots import TenantSlots
from services.gateway.tenant_usage import TenantUsage
from services.gateway.visibility import DocumentVisibility
from services.indexer.dataset_removal import DatasetRemoval
from services.indexer.placement import IndexPlacements
from services.projector.store import StateStore
from services.runtime.datasets import DatasetModels
from services.runtime.elasticsearch_client import elasticsearch_client
from services.runtime.redis_client import async_redis_client, redis_client
from services.runtime.serving import ServingRevisions
from services.runtime.settings import Settings
from services.search.hybrid import HybridSearch
from services.search.rerank import CohereReranker
from services.search.settings import SearchSettings
from services.sources.settings import SourcesSettings
from services.sources.store import SourceStore


class Services:
    """Built on first use, so the app starts without touching Kafka, Redis or the model."""

    def __init__(self, settings: Settings, gateway: GatewaySettings):
        self.settings = settings
        self.gateway = gateway
        self._providers: dict[str, EmbeddingProvider] = {}
        # The dashboard's documents by status, per tenant: (when counted, per dataset).
        self.dataset_counts: dict[str, tuple[float, list[dict]]] = {}
        self.slots = TenantSlots()  # each tenant's requests in flight, streams and request rate here

    @cached_property
    def publisher(self) -> DocumentPublisher:
        return DocumentPublisher(self.settings, self.states)

    @cached_property
    def sources(self) -> SourceStore:
        return SourceStore(redis_client(self.settings), self.settings.keys, self.sources_settings.runs_kept)

    @cached_property
    def sources_settings(self) -> SourcesSettings:
        return SourcesSettings()

    @cached_property
    def api_keys(self) -> ApiKeys:
        return ApiKeys(redis_client(self.settings), self.settings.keys)

    @cached_property
    def limits(self) -> TenantLimits:
        return TenantLimits(redis_client(self.settings), self.async_redis, self.settings.keys, self.gateway)

    @cached_property
    def usage(self) -> TenantUsage:
        return TenantUsage(redis_client(self.settings), self.settings.keys)

    @cached_property
    def states(self) -> StateStore:
        return StateStore(redis_client(self.settings), self.settings.keys)

    @cached_property
    def checks(self) -> DependencyChecks:
        """Kafka, Elasticsearch and the state Redis, checked in the background (health, readiness)."""
        return DependencyChecks({"kafka": lambda: self.publisher.producer.broker_reachable(),
                                 "elasticsearch": lambda: self.es.ping(), "redis": lambda: self.states.ping()})

    @cached_property
    def es(self) -> Elasticsearch:
        return elasticsearch_client(self.settings)

    @cached_property
    def embedding(self) -> EmbeddingSettings:
        return EmbeddingSettings()

    @cached_property
    def datasets(self) -> DatasetModels:
        return DatasetModels(redis_client(self.settings), self.settings.keys)

    @cached_property
    def catalog(self) -> DatasetCatalog:
        return DatasetCatalog(redis_client(self.settings), self.settings.keys,
                              lambda tenant: self.limits.of(tenant).datasets)

    @cached_property
    def tags(self) -> DatasetTags:
        return DatasetTags(redis_client(self.settings), self.settings.keys)

    @cached_property
    def download_links(self) -> DownloadLinks:
        key = signing_key(self.gateway.download_signing_key, redis_client(self.settings), self.settings.keys)
        return DownloadLinks(key, self.gateway.download_link_seconds)

    @cached_property
    def placements(self) -> IndexPlacements:
        return IndexPlacements(redis_client(self.settings), self.settings.keys, self.settings.dataset_index_budget)

    @cached_property
    def removals(self) -> DatasetRemoval:
        return DatasetRemoval(self.es, redis_client(self.settings), self.settings.keys, self.settings.topic_prefix,
                              self.placements, self.datasets)

    @cached_property
    def keyword_listing(self) -> KeywordListing:
        return KeywordListing(redis_client(self.settings), self.settings.keys, self.states,
                              self.gateway.keyword_listing_documents)

    @cached_property
    def visibility(self) -> DocumentVisibility:
        return DocumentVisibility(redis_client(self.settings), self.settings.keys, self.states)

    def provider(self, model: str) -> EmbeddingProvider:
        """A model to embed queries with, loaded once (422 for a name nobody knows)."""
        if model not in self._providers:
            try:
                self._providers[model] = load_provider(model, self.embedding)
            except ValueError as exc:
                raise ApiError(400, str(exc)) from exc
        return self._providers[model]

    @cached_property
    def estimates(self) -> EstimateQueue:
        niceness = self.gateway.estimate_niceness
        return EstimateQueue(lambda: Estimator(ExtractorSettings().sandbox(niceness), self.embedding),
                             self.gateway.estimate_workers, self.gateway.estimate_queue)

    @cached_property
    def search(self) -> HybridSearch:
        search = SearchSettings()
        reranker = None
        if search.rerank_model:
            reranker = CohereReranker(search.rerank_model, self.embedding.cohere_api_key,
                                      self.embedding.cohere_base_url, search.rerank_timeout_seconds)
        return HybridSearch(
            self.es, self.settings.topic_prefix, self.provider, self.datasets.indexed, self.serving_revisions,
            self.placements.of, search.fuse(), reranker, search.corroboration, search.query_feedback(),
        )

    @cached_property
    def search_workers(self) -> SearchWorkers:
        return SearchWorkers(self.settings, self.gateway)

    @cached_property
    def pipeline(self) -> PipelineView:
        return PipelineView(self.settings, redis_client(self.settings))

    @cached_property
    def pipeline_history(self) -> PipelineHistory:
        return PipelineHistory(self.gateway.dashboard_sample_seconds)

    @cached_property
    def async_redis(self) -> redis.asyncio.Redis:
        """For the live feeds, on the app's event loop."""
        return async_redis_client(self.settings)

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


def services(request: Request) -> Services:
    return request.app.state.services


Clients = Annotated[Services, Depends(services)]


def bearer_key(authorization: str | None) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header (the scheme in any case); None if the
    header is missing or of another form."""
    scheme, _, key = (authorization or "").strip().partition(" ")
    return key.strip() or None if scheme.lower() == "bearer" else None


def caller_tenant(
    s: Clients,
    authorization: Annotated[str | None, Header()] = None,
    x_tenant_id: Annotated[Id | None, Header()] = None,
) -> str:
    """The caller's tenant: the one its API key (``Authorization: Bearer <key>``) is bound to. In
    open mode a caller without a known key acts as the tenant it names in X-Tenant-Id."""
    key = bearer_key(authorization)
    tenant = s.api_keys.tenant_of(key) if key else None
    if tenant is None and s.settings.auth == "open":
        return x_tenant_id or "default"
    if tenant is None:
        if key is not None:
            message = "Access token is invalid"
        elif (authorization or "").strip().partition(" ")[2].strip():
            message = "Authorization scheme must be 'Bearer'"
        else:
            message = "Authorization header must be provided and start with 'Bearer'"
        raise ApiError(401, message, headers={"WWW-Authenticate": 'Bearer realm="api"'})
    if x_tenant_id is not None and x_tenant_id != tenant:
        raise ApiError(403, f"this API key belongs to another tenant than {x_tenant_id}")
    return tenant


Tenant = Annotated[str, Depends(caller_tenant)]


def existing_dataset(s: Services, tenant: str, dataset_id: str) -> DatasetRecord:
    """The dataset, 404 if the tenant has none of that id. Datasets written to before datasets had
    records (only their documents' states tell) get one now."""
    stored = s.catalog.stored(tenant, dataset_id)
    record = stored if stored is not None and stored.deleted_at is None else None
    if stored is None and any(st.status is not DocumentStatus.DELETED for st in s.states.dataset(tenant, dataset_id)):
        s.catalog.ensure(tenant, dataset_id)
        record = s.catalog.get(tenant, dataset_id)
    if record is None:
        raise ApiError(404, "Dataset not found.")
    return record


def live_upserts(s: Services, tenant: str, dataset_id: str) -> list[DocumentUpserted]:
    """The newest upsert of each of the dataset's documents, deleted ones left out."""
    keys = [st.key for st in s.states.dataset(tenant, dataset_id) if st.status is not DocumentStatus.DELETED]
    return list(s.publisher.registry.newest_upserts(keys).values())


def built_in_metadata(s: Services, tenant: str, dataset_id: str,
                      upserts: Iterable[DocumentUpserted]) -> dict[str, dict[str, Any]]:
    """Document id -> Dify's built-in field values of each of the dataset's ``upserts`` (empty
    while the dataset has them switched off)."""
    upserts = list(upserts)
    record = s.catalog.get(tenant, dataset_id)
    created = s.catalog.created(tenant, dataset_id, [u.document_id for u in upserts])
    return {u.document_id: dify.built_in_values(record, u, created.get(u.document_id)) for u in upserts}


def require_document(s: Services, tenant: str, dataset_id: str, document_id: str, live: bool = False) -> None:
    """The document is known in the dataset of the URL; ``live``: and not deleted (a deleted one
    can still be retried or written again)."""
    if s.publisher.dataset_of(tenant, document_id) != dataset_id:
        raise ApiError(404, "Document not found.")
    if live:
        state = s.states.get(document_key(tenant, document_id))
        if state is not None and state.status is DocumentStatus.DELETED:
            raise ApiError(404, "Document not found.")


def claim_id(s: Services, tenant: str, dataset_id: str, document_id: str | None) -> None:
    """A document id names one document of a tenant: it cannot be reused in another dataset."""
    owner = s.publisher.dataset_of(tenant, document_id) if document_id else None
    if owner is not None and owner != dataset_id:
        raise ApiError(409, f"document {document_id} already belongs to dataset {owner}")


def batch_header(x_batch_id: Annotated[str | None, Header(max_length=64)] = None) -> str:
    """The upload batch a write belongs to: the caller's X-Batch-Id, or a new one."""
    return x_batch_id or uuid.uuid4().hex


Batch = Annotated[str, Depends(batch_header)]


def priority_header(x_priority: Annotated[Priority, Header()] = Priority.INTERACTIVE) -> Priority:
    """The lane of a write: interactive unless the caller's X-Priority says bulk (an import)."""
    return x_priority


RequestPriority = Annotated[Priority, Depends(priority_header)]
