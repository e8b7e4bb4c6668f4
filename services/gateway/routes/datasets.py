"""Datasets as Dify's Knowledge API manages them, and the embedding models a dataset may take."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from schemas import DocumentStatus, Priority
from schemas.envelope import Id
from services.embedder.models import LOCAL_MODELS, known_models
from services.gateway import dify
from services.gateway.datasets import DatasetRecord, NameTaken
from services.gateway.errors import ApiError
from services.gateway.requests import MAX_TAG_IDS, DatasetCreate, DatasetUpdate, ModelSwitch
from services.gateway.routes.documents import check_model_name
from services.gateway.routes.tags import bound_tags
from services.gateway.services import Clients, Services, Tenant, existing_dataset

router = APIRouter()


@router.post("/v1/datasets")
def create_dataset(body: DatasetCreate, tenant: Tenant, s: Clients) -> dict:
    if body.embedding_model is not None:
        check_model_name(body.embedding_model)
    try:
        record = s.catalog.create(tenant, **body.model_dump(exclude={"provider"}))
    except NameTaken:
        raise ApiError(409, "The dataset name already exists. Please modify your dataset name.",
                       code="dataset_name_duplicate") from None
    if body.embedding_model is not None:
        s.datasets.claim(tenant, record.id, body.embedding_model)
    return shaped(s, tenant, record)


@router.get("/v1/datasets")
def list_datasets(
    tenant: Tenant, s: Clients,
    page: Annotated[int, Query(ge=1)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    keyword: Annotated[str | None, Query(max_length=256)] = None,
    tag_ids: Annotated[list[Id] | None, Query(max_length=MAX_TAG_IDS,
                                              description="datasets bound to any of these tags")] = None,
) -> dict:
    records = s.catalog.all(tenant)
    if keyword:
        records = [r for r in records if keyword.lower() in r.name.lower()]
    tags = bound_tags(s, tenant)
    if tag_ids:
        wanted = set(tag_ids)
        records = [r for r in records if wanted & {t["id"] for t in tags.get(r.id, [])}]
    shown = records[(page - 1) * limit: page * limit]
    return {"data": shaped_all(s, tenant, shown, tags), "has_more": page * limit < len(records),
            "limit": limit, "total": len(records), "page": page}


@router.get("/v1/datasets/{dataset_id}")
def get_dataset(dataset_id: Id, tenant: Tenant, s: Clients) -> dict:
    record = existing_dataset(s, tenant, dataset_id)
    answer = shaped(s, tenant, record)
    if record.permission == "partial_members":
        answer["partial_member_list"] = []  # indexflow has no team members: a tenant's key is the tenant
    return answer


@router.patch("/v1/datasets/{dataset_id}")
def update_dataset(dataset_id: Id, body: DatasetUpdate, tenant: Tenant, s: Clients) -> dict:
    record = existing_dataset(s, tenant, dataset_id)
    changes = body.model_dump(exclude_unset=True, exclude={"embedding_model"})
    try:
        record = s.catalog.update(tenant, record, **changes)
    except NameTaken:
        raise ApiError(409, "The dataset name already exists. Please modify your dataset name.",
                       code="dataset_name_duplicate") from None
    if body.embedding_model is not None and body.embedding_model != s.datasets.configured(tenant, dataset_id):
        switch_model(s, tenant, dataset_id, body.embedding_model)
    return {**shaped(s, tenant, record), "partial_member_list": []}


@router.delete("/v1/datasets/{dataset_id}", status_code=204)
def delete_dataset(dataset_id: Id, tenant: Tenant, s: Clients) -> Response:
    """Every document of the dataset is deleted (on the bulk lane, as an import), then the dataset;
    its indices once the documents are gone. Its sources go first, so none publishes again."""
    record = existing_dataset(s, tenant, dataset_id)
    for source in s.sources.of_dataset(tenant, dataset_id):
        s.sources.remove(source)
    live = [state.document_id for state in s.states.dataset(tenant, dataset_id)
            if state.status is not DocumentStatus.DELETED]
    s.removals.expect(tenant, dataset_id, live)  # its index goes with the last of these deletes
    for document_id in live:
        s.publisher.delete(tenant, dataset_id, document_id, Priority.BULK)
        s.usage.give_back(tenant, document_id)
    s.catalog.delete(tenant, record)
    s.tags.forget_dataset(tenant, dataset_id)
    return Response(status_code=204)


@router.post("/v1/datasets/{dataset_id}/embedding-model")
def switch_embedding_model(dataset_id: Id, body: ModelSwitch, tenant: Tenant, s: Clients) -> dict:
    """Move the dataset to another model without downtime: new documents take it at once, and
    every document is re-embedded as a new revision while its current one stays searchable
    (search covers both models until the last document has moved)."""
    moved = switch_model(s, tenant, dataset_id, body.embedding_model)
    return {"embedding_model": body.embedding_model, "documents": moved}


@router.get("/v1/workspaces/current/models/model-types/text-embedding")
def embedding_models(_tenant: Tenant, s: Clients) -> dict:
    """The models a dataset may take, as Dify lists a workspace's: one provider, indexflow."""
    local = {m.name for m in LOCAL_MODELS}
    cohere_ready = bool(s.embedding.cohere_api_key)
    models = [
        {"model": name, "label": {"en_US": name}, "model_type": "text-embedding", "features": None,
         "fetch_from": "predefined-model", "model_properties": {}, "deprecated": False,
         "status": "active" if name in local or cohere_ready else "no-configure",
         "load_balancing_enabled": False}
        for name in known_models()
    ]
    return {"data": [{"provider": "indexflow", "label": {"en_US": "indexflow"}, "icon_small": None,
                      "status": "active", "models": models}]}


def switch_model(s: Services, tenant: str, dataset_id: str, model: str) -> int:
    """New documents of the dataset take ``model``; every document is re-embedded with it. Answers
    how many documents move."""
    check_model_name(model)
    s.datasets.switch(tenant, dataset_id, model)
    return sum(
        s.publisher.reembed(tenant, state.document_id, model)
        for state in s.states.dataset(tenant, dataset_id)
        if state.status is not DocumentStatus.DELETED
    )


def shaped(s: Services, tenant: str, record: DatasetRecord) -> dict:
    return shaped_all(s, tenant, [record], bound_tags(s, tenant))[0]


def shaped_all(s: Services, tenant: str, records: list[DatasetRecord], tags: dict[str, list[dict]]) -> list[dict]:
    """Dify's dataset objects of ``records``; ``tags``: each dataset's bound tags. Read in a few
    round trips whatever their number (each is a wait on a busy machine)."""
    figures = s.states.dataset_figures(tenant, [record.id for record in records])
    models = s.datasets.configured_many(tenant, [record.id for record in records])
    answers = []
    for record in records:
        model = models[record.id]
        if model is None and record.indexing_technique != "economy":
            model = s.embedding.default_model  # what its first document will take
        answers.append(dify.dataset(record, figures[record.id], model, tags.get(record.id, [])))
    return answers
