"""HTTP API (OpenAPI at /docs): Dify's Knowledge (dataset) Service API, wire-compatible, and the
native fields and routes beside it (revisions, lanes, operator commands, estimates, search across
datasets), and Dify's External Knowledge API (``POST /retrieval``). The composition root:
settings, clients, error shapes and the routers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from services.gateway import errors, request_metrics
from services.gateway.admission import Admission
from services.gateway.body_limit import BodyLimit
from services.gateway.durable_writes import DurableWrites
from services.gateway.request_metrics import RequestMetrics
from services.gateway.security_headers import SecurityHeaders
from services.gateway.routes import (
    dashboard, datasets, documents, downloads, external_knowledge, metadata, operations, search, segments, sources,
    tags,
)
from services.gateway.services import Services
from services.gateway.settings import GatewaySettings
from services.runtime.durability import state_durability
from services.runtime.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    services = Services(settings or Settings(), GatewaySettings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        services.search_workers.start()
        sampling = asyncio.create_task(services.pipeline_history.follow(
            services.pipeline.snapshot, services.async_redis, services.settings.keys))
        yield
        sampling.cancel()
        services.search_workers.close()

    app = FastAPI(title="indexflow gateway", version="1", description=__doc__, lifespan=lifespan)
    app.state.services = services
    app.add_middleware(DurableWrites, barrier=lambda: state_durability(services.settings))
    app.add_middleware(BodyLimit, limit_for=services.gateway.body_limit)
    app.add_middleware(Admission, services=services)  # before any body is read
    app.add_middleware(RequestMetrics)
    documentation = frozenset(p for p in (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url) if p)
    app.add_middleware(SecurityHeaders, documentation_paths=documentation)
    errors.install(app)
    if services.settings.auth == "open":
        log.warning(
            "AUTHENTICATION IS OFF (INDEXFLOW_AUTH=open): a caller without a known API key may act as any "
            "tenant it names in X-Tenant-Id. Set INDEXFLOW_AUTH=api_keys anywhere but a laptop."
        )
    # Documents and downloads before operations: ".../{document_id}/update-by-text" and
    # ".../{document_id}/download" are not commands; tags before datasets: "tags" is no dataset id.
    routers = (documents.router, downloads.router, downloads.files_router, segments.router, metadata.router,
               tags.router, datasets.router, operations.router, search.router, sources.router,
               external_knowledge.router, dashboard.router, request_metrics.router)
    for router in routers:
        app.include_router(router)
    app.openapi = _with_worker_bodies(app)
    return app


def _with_worker_bodies(app: FastAPI) -> Any:
    """The OpenAPI document with the schemas of the bodies search workers parse (no route model
    names them)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            document.setdefault("components", {}).setdefault("schemas", {}).update(search.body_schemas())
        return app.openapi_schema

    return openapi
