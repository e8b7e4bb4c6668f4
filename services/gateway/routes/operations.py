"""Health, indexing estimates and operator commands on one document (pause, resume, cancel, retry)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Request, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile as StarletteUpload

from schemas import IndexingSpec
from schemas.envelope import Id
from services.estimate.estimator import Estimate, Estimator
from services.estimate.queue import Abandoned, QueueFull, TenantBusy, TimedOut, Work
from services.gateway.admission import estimate_refused
from services.extractor.parsers import UnextractableDocument
from services.gateway.body_limit import is_multipart
from services.gateway.errors import ApiError
from services.gateway.requests import CreateByText, FileOptions
from services.gateway.routes.documents import indexing_of, parse_options
from services.gateway.services import Clients, RequestPriority, Services, Tenant, bearer_key, require_document
from services.runtime.errors import OUTAGE_ERRORS
from services.runtime.heartbeat import last_beats
from services.runtime.metrics import ESTIMATES
from services.runtime.redis_client import redis_client

router = APIRouter()


@router.get("/healthz")
def health(response: Response, s: Clients, authorization: Annotated[str | None, Header()] = None) -> dict:
    """Healthy when Kafka, Elasticsearch and the state Redis answer (503 otherwise); with which
    answer and how long ago each service last showed life for a caller with a valid API key (or
    any caller in open mode). A probe without one learns ``ok`` only."""
    report = check_dependencies(s)
    if not report["ok"]:
        response.status_code = 503
    if not _may_see_details(s, authorization):
        return {"ok": report["ok"]}
    try:
        report["seconds_since_heartbeat"] = last_beats(redis_client(s.settings), s.settings.keys)
    except OUTAGE_ERRORS:
        report["seconds_since_heartbeat"] = {}
    return report


@router.get("/readyz")
def ready(response: Response, s: Clients, authorization: Annotated[str | None, Header()] = None) -> dict:
    """Ready to serve when what reads need answers: the state Redis and Elasticsearch (503
    otherwise). Kafka is reported beside them but does not count: without it writes answer 503
    on their own, while search goes on. Answered from the last background checks, at once."""
    checked = s.checks.results()
    needed = {name: checked[name] for name in ("redis", "elasticsearch")}
    ok = all(needed.values())
    if not ok:
        response.status_code = 503
    if not _may_see_details(s, authorization):
        return {"ok": ok}
    return {"ok": ok, "dependencies": needed, "kafka": checked["kafka"]}


def _may_see_details(s: Services, authorization: str | None) -> bool:
    if s.settings.auth == "open":
        return True
    key = bearer_key(authorization)
    try:
        return key is not None and s.api_keys.tenant_of(key) is not None
    except OUTAGE_ERRORS:  # the state Redis is down: the key cannot be checked
        return False


@router.post("/v1/datasets/{dataset_id}/document/estimate")
async def estimate(dataset_id: Id, request: Request, tenant: Tenant, s: Clients) -> dict:
    """What indexing a text (JSON, as create-by-text) or a file (multipart, as create-by-file)
    would make: segments, tokens, price for the dataset's model, the first segments. Nothing is
    stored. Estimates wait their turn in a queue of their own (429 past the tenant's concurrent
    estimates or a full queue), and are abandoned when the client leaves or time is up."""
    if is_multipart(request.headers.get("content-type", "")):
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, StarletteUpload):
            raise ApiError(400, "a 'file' part is required", code="no_file_uploaded")
        options = parse_options(str(form.get("data", "{}")), FileOptions)
        indexing = indexing_of(s, tenant, dataset_id, options, claim=False)
        return await _queued(s, request, tenant, _file_estimate(upload, indexing))
    try:
        body = CreateByText.model_validate(await request.json())
    except ValidationError as exc:
        raise ApiError(400, "; ".join(e["msg"] for e in exc.errors())) from exc
    except ValueError as exc:
        raise ApiError(400, f"not JSON: {exc}") from exc
    indexing = indexing_of(s, tenant, dataset_id, body, claim=False)
    return await _queued(s, request, tenant,
                         lambda estimator, _stop: estimator.from_text(body.name, body.text, indexing))


@router.post("/v1/datasets/{dataset_id}/documents/{document_id}/{command}")
def document_command(
    dataset_id: Id, document_id: Id, command: Literal["pause", "resume", "cancel", "retry"],
    priority: RequestPriority, tenant: Tenant, s: Clients,
) -> dict:
    require_document(s, tenant, dataset_id, document_id)
    if command == "retry":
        again = s.publisher.retry(tenant, document_id, priority)
        if again is None:
            raise ApiError(404, "Document not found.")
        return {"result": "accepted", "command": command, "revision": again.revision}
    revision = s.publisher.latest_revision(tenant, document_id)
    s.publisher.command(tenant, dataset_id, document_id, revision, command, priority)
    return {"result": "accepted", "command": command, "revision": revision}


def check_dependencies(s: Services) -> dict:
    """Every server's last answer (the background checks: services/gateway/readiness.py)."""
    dependencies = s.checks.results()
    return {"ok": all(dependencies.values()), "dependencies": dependencies}


async def _queued(s: Services, request: Request, tenant: str, work: Work) -> dict:
    limits = await s.limits.of_async(tenant)
    try:
        job = s.estimates.submit(tenant, limits.estimates, work)
    except (TenantBusy, QueueFull) as exc:
        raise estimate_refused(exc, limits.estimates, s.gateway.estimate_queue) from None
    client_gone = asyncio.ensure_future(_disconnected(request))
    seconds = s.gateway.estimate_seconds
    try:
        answer = await s.estimates.answer(job, client_gone, seconds)
    except Abandoned:
        ESTIMATES.labels("abandoned").inc()
        raise ApiError(499, "the client left before the estimate", code="client_closed_request") from None
    except TimedOut as exc:
        ESTIMATES.labels("timed_out").inc()
        if exc.running:
            raise ApiError(400, f"cannot estimate: it took over {seconds:g}s (INDEXFLOW_GATEWAY_ESTIMATE_SECONDS)") \
                from None
        raise ApiError(503, f"the estimate waited {seconds:g}s for its turn (INDEXFLOW_GATEWAY_ESTIMATE_SECONDS); "
                            "retry shortly", headers={"Retry-After": "5"}) from None
    except UnextractableDocument as exc:
        ESTIMATES.labels("unestimable").inc()
        raise ApiError(400, f"cannot estimate: {exc}") from exc
    finally:
        client_gone.cancel()
    ESTIMATES.labels("answered").inc()
    return answer.as_dict()


async def _disconnected(request: Request) -> None:
    """Returns once the client has gone (its body is read by then: what comes next is the end)."""
    while (await request.receive())["type"] != "http.disconnect":
        continue


def _file_estimate(upload: StarletteUpload, indexing: IndexingSpec) -> Work:
    def work(estimator: Estimator, stop: threading.Event) -> Estimate:
        name = upload.filename or "upload"
        with tempfile.NamedTemporaryFile(prefix="indexflow-estimate-", suffix=Path(name).suffix[:16]) as copy:
            shutil.copyfileobj(upload.file, copy, 2**20)
            copy.flush()
            return estimator.from_file(name, Path(copy.name), indexing, stop)
    return work
