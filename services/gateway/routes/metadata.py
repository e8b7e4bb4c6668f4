"""Dify's metadata: a dataset declares fields (name, type), documents carry values of them, and
retrieval filters on them. A document's values travel with it through the pipeline (every chunk
carries them), so setting them, or renaming or deleting a field that documents have, writes a new
revision of each document concerned."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from schemas.documents import MAX_METADATA_CHARS, Metadata
from schemas.envelope import Id
from services.gateway.datasets import BUILT_IN_FIELDS, DatasetRecord, MetadataField
from services.gateway.errors import ApiError
from services.gateway.services import Clients, Services, Tenant, existing_dataset, live_upserts

router = APIRouter(prefix="/v1/datasets/{dataset_id}")
_METADATA = TypeAdapter(Metadata)


class FieldCreate(BaseModel):
    type: Literal["string", "number", "time"]
    name: str = Field(min_length=1, max_length=128)


class FieldRename(BaseModel):
    name: str = Field(min_length=1, max_length=128)


class MetadataValue(BaseModel):
    id: str | None = Field(default=None, max_length=128)
    name: str = Field(min_length=1, max_length=128)
    value: Annotated[str, Field(max_length=MAX_METADATA_CHARS)] | int | float | None = None


class DocumentValues(BaseModel):
    document_id: Id
    metadata_list: list[MetadataValue] = Field(max_length=100)
    partial_update: bool = False


class MetadataOperation(BaseModel):
    operation_data: list[DocumentValues] = Field(min_length=1, max_length=1000)


@router.post("/metadata", status_code=201)
def create_field(dataset_id: Id, body: FieldCreate, tenant: Tenant, s: Clients) -> dict:
    existing_dataset(s, tenant, dataset_id)
    field = MetadataField(name=body.name, type=body.type)

    def add(record: DatasetRecord) -> dict:
        _check_free(record, body.name)
        return {"metadata_fields": [*record.metadata_fields, field]}

    s.catalog.change(tenant, dataset_id, add)
    return field.model_dump()


@router.get("/metadata")
def list_fields(dataset_id: Id, tenant: Tenant, s: Clients) -> dict:
    record = existing_dataset(s, tenant, dataset_id)
    values = _documents_metadata(s, tenant, dataset_id)
    return {
        "doc_metadata": [{**f.model_dump(), "count": sum(f.name in m for m in values.values())}
                         for f in record.metadata_fields],
        "built_in_field_enabled": record.built_in_field_enabled,
    }


@router.patch("/metadata/{metadata_id}")
def rename_field(dataset_id: Id, metadata_id: str, body: FieldRename, tenant: Tenant, s: Clients) -> dict:
    record = existing_dataset(s, tenant, dataset_id)
    field = _field(record, metadata_id)
    if body.name != field.name:
        renamed = field.model_copy(update={"name": body.name})

        def rename(record: DatasetRecord) -> dict:
            _check_free(record, body.name)
            return {"metadata_fields": [renamed if f.id == field.id else f for f in record.metadata_fields]}

        s.catalog.change(tenant, dataset_id, rename)
        _rewrite(s, tenant, dataset_id, lambda m: {body.name if k == field.name else k: v for k, v in m.items()})
        field = renamed
    return field.model_dump()


@router.delete("/metadata/{metadata_id}", status_code=204)
def delete_field(dataset_id: Id, metadata_id: str, tenant: Tenant, s: Clients) -> Response:
    record = existing_dataset(s, tenant, dataset_id)
    field = _field(record, metadata_id)
    s.catalog.change(tenant, dataset_id,
                     lambda now: {"metadata_fields": [f for f in now.metadata_fields if f.id != field.id]})
    _rewrite(s, tenant, dataset_id, lambda m: {k: v for k, v in m.items() if k != field.name})
    return Response(status_code=204)


@router.get("/metadata/built-in")
def built_in_fields(dataset_id: Id, tenant: Tenant, s: Clients) -> dict:
    existing_dataset(s, tenant, dataset_id)
    return {"fields": list(BUILT_IN_FIELDS)}


@router.post("/metadata/built-in/{action}")
def switch_built_in(dataset_id: Id, action: Literal["enable", "disable"], tenant: Tenant, s: Clients) -> dict:
    existing_dataset(s, tenant, dataset_id)
    s.catalog.change(tenant, dataset_id, lambda _: {"built_in_field_enabled": action == "enable"})
    return {"result": "success"}


@router.post("/documents/metadata")
def set_document_values(dataset_id: Id, body: MetadataOperation, tenant: Tenant, s: Clients) -> dict:
    """Each document's values: replaced, or with ``partial_update`` merged over the ones it has.
    Every value must be of a field the dataset declares."""
    record = existing_dataset(s, tenant, dataset_id)
    declared = {f.name for f in record.metadata_fields}
    current = _documents_metadata(s, tenant, dataset_id)
    for item in body.operation_data:
        if item.document_id not in current:
            raise ApiError(400, "Document not found.")
        unknown = [v.name for v in item.metadata_list if v.name not in declared]
        if unknown:
            raise ApiError(400, f"Metadata not found: {unknown[0]} is not a field of this dataset")
        _values_of(item)(current[item.document_id])  # within the bounds, before any document changes
    for item in body.operation_data:
        s.publisher.change_metadata(tenant, item.document_id, _values_of(item))
    return {"result": "success"}


def _values_of(item: DocumentValues) -> Callable[[Metadata], Metadata]:
    """The item's values replace a document's, or with ``partial_update`` merge over them; 400
    when the result is over a document's metadata bounds."""
    given = {v.name: v.value for v in item.metadata_list}

    def edit(now: Metadata) -> Metadata:
        try:
            return _METADATA.validate_python({**now, **given} if item.partial_update else given)
        except ValidationError as exc:
            problems = "; ".join(e["msg"] for e in exc.errors())
            raise ApiError(400, f"metadata of document {item.document_id}: {problems}") from exc

    return edit


def _check_free(record: DatasetRecord, name: str) -> None:
    if any(f.name == name for f in record.metadata_fields):
        raise ApiError(400, "Metadata name already exists.")
    if any(f["name"] == name for f in BUILT_IN_FIELDS):
        raise ApiError(400, "Metadata name already exists in Built-in fields.")


def _field(record: DatasetRecord, metadata_id: str) -> MetadataField:
    field = next((f for f in record.metadata_fields if f.id == metadata_id), None)
    if field is None:
        raise ApiError(404, "Metadata not found.")
    return field


def _documents_metadata(s: Services, tenant: str, dataset_id: str) -> dict[str, dict[str, Any]]:
    """Document id -> its own metadata, for the dataset's documents (deleted ones left out)."""
    return {u.document_id: dict(u.metadata) for u in live_upserts(s, tenant, dataset_id)}


def _rewrite(s: Services, tenant: str, dataset_id: str, edit: Callable[[Metadata], Metadata]) -> None:
    """A new revision of every document of the dataset whose metadata ``edit`` changes."""
    for document_id, metadata in _documents_metadata(s, tenant, dataset_id).items():
        if edit(metadata) != metadata:  # skip the lock and the revision for one it leaves alone
            s.publisher.change_metadata(tenant, document_id, edit)
