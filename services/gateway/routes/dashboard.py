"""The operations dashboard: a page (``/dashboard``) and what feeds it. ``/v1/ops/overview`` is the
caller's datasets with their documents by status and their sources' last runs, its limits and their use, and the pipeline
(each stage's lag, rate and replicas, the DLQ); ``/v1/ops/history`` the pipeline's last hour for
its charts; ``/v1/ops/events`` streams (server-sent events)
every state the projector writes of the caller's documents as it is written, and the overview
every few seconds. Document data is the caller's tenant's only; the pipeline figures are
deployment-wide."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from services.gateway.errors import ApiError
from services.gateway.services import Clients, Services, Tenant, caller_tenant
from services.runtime.redis_client import initialized

router = APIRouter()
STATIC = Path(__file__).resolve().parents[1] / "static"
_PAGES = {"dashboard.css": "text/css", **{name: "text/javascript" for name in (
    "dashboard.js", "common.js", "charts.js", "documents.js", "retrieval.js")}}
OVERVIEW_EVERY_SECONDS = 2.0
# State changes arriving within this long travel as one event (a busy import makes hundreds a second).
COALESCE_SECONDS = 0.2


@router.get("/dashboard", include_in_schema=False)
def page() -> FileResponse:
    return FileResponse(STATIC / "dashboard.html", media_type="text/html")


@router.get("/dashboard/{asset}", include_in_schema=False)
def asset(asset: str) -> FileResponse:
    if asset not in _PAGES:
        raise ApiError(404, "no such page")
    return FileResponse(STATIC / asset, media_type=_PAGES[asset])


@router.get("/v1/ops/overview")
def overview(tenant: Tenant, s: Clients) -> dict:
    """The caller's datasets (documents by status) and the pipeline's stages, lag and DLQ."""
    return overview_of(s, tenant)


@router.get("/v1/ops/history")
def history(_tenant: Tenant, s: Clients) -> dict:
    """The pipeline over the last hour, oldest first, one sample every ``every_seconds`` (see
    pipeline_history.py): each stage's lag and committed records per second, the DLQ, and the
    indexing latency of the documents completed within each sample. Deployment-wide, as the
    overview's pipeline."""
    return {"every_seconds": s.pipeline_history.every_seconds, "samples": s.pipeline_history.samples()}


@router.get("/v1/ops/events")
async def events(request: Request, tenant: Tenant, s: Clients) -> StreamingResponse:
    """Server-sent events: ``overview`` first and every few seconds; ``states``, the caller's
    documents' new states (each document's newest, in the order written) as they are written.
    The stream ends once the caller's key no longer names its tenant (revoked)."""

    def still_authorised() -> bool:
        try:
            return caller_tenant(s, request.headers.get("authorization"), request.headers.get("x-tenant-id")) == tenant
        except ApiError:
            return False

    return StreamingResponse(_events(request, s, tenant, still_authorised), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def overview_of(s: Services, tenant: str) -> dict:
    datasets = _datasets(s, tenant)
    return {"tenant": tenant, "datasets": datasets, "pipeline": s.pipeline.snapshot(),
            "limits": _limits(s, tenant, len(datasets))}


def _limits(s: Services, tenant: str, datasets: int) -> dict[str, dict]:
    """Each of the tenant's limits and its use: held in the deployment (datasets, documents,
    bytes, tags), or at once on this gateway (streams, estimates, searches); a rate has no use to show."""
    usage = s.usage.of(tenant)
    used = {"datasets": datasets, "documents": usage.documents, "bytes": usage.bytes, "rps": None,
            "streams": s.slots.streams[tenant], "estimates": s.estimates.held[tenant],
            "searches": s.slots.searches[tenant], "tags": s.tags.count(tenant)}
    return {name: {"limit": limit, "used": used[name]} for name, limit in s.limits.of(tenant).model_dump().items()}


def _datasets(s: Services, tenant: str) -> list[dict]:
    """The tenant's datasets with their documents by status, read at most every few seconds
    however many dashboards watch."""
    counted_at, datasets = s.dataset_counts.get(tenant, (0.0, []))
    if time.monotonic() - counted_at < OVERVIEW_EVERY_SECONDS:
        return datasets
    datasets = []
    sources = _sources(s, tenant)
    records = s.catalog.all(tenant)
    figures = s.states.dataset_figures(tenant, [record.id for record in records])
    for record in records:
        statuses = figures[record.id].statuses
        datasets.append({"id": record.id, "name": record.name, "documents": sum(statuses.values()),
                         "statuses": dict(statuses), "sources": sources.get(record.id, [])})
    s.dataset_counts[tenant] = (time.monotonic(), datasets)
    return datasets


def _sources(s: Services, tenant: str) -> dict[str, list[dict]]:
    """Dataset -> its sources, each with its last run."""
    mine = [source for source in s.sources.all() if source.tenant_id == tenant]
    last = s.sources.last_runs(mine)
    by_dataset: dict[str, list[dict]] = {}
    for source in mine:
        run = last[source.id]
        by_dataset.setdefault(source.dataset_id, []).append({
            "id": source.id, "kind": source.kind, "name": source.name, "every": source.every,
            "last_run": run.model_dump(mode="json") if run is not None else None})
    return by_dataset


async def _events(
    request: Request, s: Services, tenant: str, still_authorised: Callable[[], bool],
) -> AsyncIterator[bytes]:
    pubsub = (await initialized(s.async_redis)).pubsub()
    await pubsub.subscribe(s.settings.keys.state_changes(tenant))
    loop = asyncio.get_running_loop()
    try:
        yield _event("overview", await run_in_threadpool(overview_of, s, tenant))
        next_overview = loop.time() + OVERVIEW_EVERY_SECONDS
        next_key_check = loop.time() + s.gateway.stream_key_check_seconds
        while not await request.is_disconnected():
            if loop.time() >= next_key_check:
                if not await run_in_threadpool(still_authorised):
                    return
                next_key_check = loop.time() + s.gateway.stream_key_check_seconds
            changed = await _changes(pubsub, until=min(next_overview, loop.time() + 1.0))
            if changed:
                yield _event("states", list(changed.values()))
            if loop.time() >= next_overview:
                yield _event("overview", await run_in_threadpool(overview_of, s, tenant))
                next_overview = loop.time() + OVERVIEW_EVERY_SECONDS
    finally:
        await pubsub.unsubscribe()
        await pubsub.aclose()


async def _changes(pubsub, until: float) -> dict[str, dict]:
    """The states published before ``until``, gathered for COALESCE_SECONDS after the first one;
    by document, its newest."""
    loop = asyncio.get_running_loop()
    changed: dict[str, dict] = {}
    while (left := until - loop.time()) > 0:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
        if message is None:
            continue
        if not changed:
            until = min(until, loop.time() + COALESCE_SECONDS)
        state = orjson.loads(message["data"])
        changed.pop(state["document_id"], None)  # moved to the end: the order written
        changed[state["document_id"]] = state
    return changed


def _event(name: str, data: object) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
