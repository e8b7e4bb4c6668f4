"""Dify's External Knowledge API, so a Dify admin can register indexflow as an external knowledge
base: Dify sends ``POST {endpoint}/retrieval`` with ``Authorization: Bearer <key>`` and
``{knowledge_id, query, retrieval_setting: {top_k, score_threshold}, metadata_condition}``, and
reads ``{"records": [{content, score, title, metadata}]}``. The knowledge is a dataset of the key's
tenant, searched as its retrieval settings say. Errors as that API has them: ``{error_code,
error_msg}`` (1001 bad Authorization header, 1002 authorization failed, 2001 no such knowledge)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationError

from services.gateway import dify
from services.gateway.requests import MAX_QUERY_CHARS, RetrieveRequest
from services.gateway.retrieval_model import DifyRetrievalModel
from services.gateway.routes.search import hit_metadata, search
from services.gateway.search_workers import Answer
from services.gateway.services import Clients, Services, bearer_key
from services.search.metadata_filter import MetadataCondition

router = APIRouter()


class RetrievalSetting(BaseModel):
    top_k: int = Field(ge=1, le=100)
    score_threshold: float = Field(default=0.0, ge=0.0, le=1.0)


class ExternalRetrieval(BaseModel):
    knowledge_id: str = Field(min_length=1, max_length=128)
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    retrieval_setting: RetrievalSetting
    metadata_condition: MetadataCondition | None = None


def _error(status: int, code: int, message: str) -> Answer:
    return Answer(status, orjson.dumps({"error_code": code, "error_msg": message}))


@router.post("/retrieval")
@router.post("/v1/retrieval")
async def retrieval(request: Request, s: Clients,
                    authorization: Annotated[str | None, Header()] = None) -> Response:
    key = bearer_key(authorization)
    if key is None:
        return _error(403, 1001, "Invalid Authorization header format. Expected 'Bearer <api-key>' format.").response()
    # Searches wait their turn by key here: the tenant is the worker's to look up.
    return await s.search_workers.answer(key, _retrieve, key, await request.body())


def _retrieve(s: Services, key: str, raw: bytes) -> Any:
    # In open mode (a laptop) any key is the default tenant's, as any unkeyed native request.
    tenant = s.api_keys.tenant_of(key) or ("default" if s.settings.auth == "open" else None)
    if tenant is None:
        return _error(403, 1002, "Authorization failed")
    if not raw.strip():
        # Dify's registration probe: a POST with the key and no body. Anything but 403, 404 or 502
        # registers the endpoint; there is nothing to search.
        return {"records": []}
    try:
        body = ExternalRetrieval.model_validate_json(raw)
    except ValidationError as exc:
        return _error(400, 400, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
    return _search(s, tenant, body)


def _search(s: Services, tenant: str, body: ExternalRetrieval) -> Any:
    record = s.catalog.get(tenant, body.knowledge_id)
    if record is None:
        return _error(404, 2001, "The knowledge does not exist")
    retrieve = RetrieveRequest(query=body.query, retrieval_model=DifyRetrievalModel.model_validate({
        **dify.retrieval_model(record),  # the dataset's search method and weights
        "top_k": body.retrieval_setting.top_k,
        "score_threshold_enabled": True,
        "score_threshold": body.retrieval_setting.score_threshold,
        "metadata_filtering_conditions": body.metadata_condition,
    }))
    found = search(s, tenant, retrieve, retrieve.plan(), record.id)
    hits = found.records if found is not None else []
    metadata = hit_metadata(s, tenant, hits)
    return {"records": [
        {
            "content": hit.content,
            "score": hit.score,
            "title": hit.name,
            # Never null: Dify writes its own keys into it.
            "metadata": {
                **metadata.get(hit.document_id, {}),
                "document_id": hit.document_id, "dataset_id": hit.dataset_id, "segment_id": hit.segment_stable_id,
                "position": hit.position, "page": hit.page,
            },
        }
        for hit in hits
    ]}
