"""A dataset's sources: where its documents are kept in sync from (a folder, a website, an S3
bucket, Notion). The sources service does the syncs; here they are defined, asked for and
watched. A source's credentials are never answered: its configuration shows them as "set"."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from schemas.envelope import Id
from services.gateway.errors import ApiError
from services.gateway.services import Clients, Services, Tenant, existing_dataset
from services.sources.addresses import BlockedAddress, check_public
from services.sources.definitions import (
    CONFIGS, InvalidSource, Kind, KindConfig, Source, new_source, parse_config,
)
from services.sources.folder import confined
from services.sources.publishing import ItemPublisher
from services.sources.store import Run, SourceRemoved

router = APIRouter(prefix="/v1/datasets/{dataset_id}/sources")


class SourceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    name: str = Field(min_length=1, max_length=256)
    config: dict[str, Any]
    every: int | None = Field(default=None, description="seconds between syncs; null: only when asked")


class SourceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=256)
    # Merged into the current configuration: credentials left out are kept.
    config: dict[str, Any] | None = None
    every: int | None = None


@router.post("", status_code=201)
def create_source(dataset_id: Id, body: SourceCreate, tenant: Tenant, s: Clients) -> dict:
    existing_dataset(s, tenant, dataset_id)
    config = checked_config(s, body.kind, body.config)
    source = new_source(tenant, dataset_id, body.kind, body.name, config, checked_every(s, body.every))
    s.sources.save(source, config.secrets())
    return shown(source, None)


@router.get("")
def list_sources(dataset_id: Id, tenant: Tenant, s: Clients) -> dict:
    existing_dataset(s, tenant, dataset_id)
    sources = s.sources.of_dataset(tenant, dataset_id)
    last = s.sources.last_runs(sources)
    return {"data": [shown(source, last[source.id]) for source in sources], "total": len(sources)}


@router.get("/{source_id}")
def get_source(dataset_id: Id, source_id: Id, tenant: Tenant, s: Clients) -> dict:
    source = existing_source(s, tenant, dataset_id, source_id)
    return shown(source, s.sources.last_runs([source])[source.id])


@router.get("/{source_id}/runs")
def source_runs(dataset_id: Id, source_id: Id, tenant: Tenant, s: Clients) -> dict:
    """The source's run history, newest first."""
    source = existing_source(s, tenant, dataset_id, source_id)
    return {"data": [run.model_dump(mode="json") for run in s.sources.runs(source)]}


@router.patch("/{source_id}")
def update_source(dataset_id: Id, source_id: Id, body: SourceUpdate, tenant: Tenant, s: Clients) -> dict:
    source = existing_source(s, tenant, dataset_id, source_id)
    changes: dict[str, Any] = {}
    secrets = s.sources.secrets(source)
    if body.name is not None:
        changes["name"] = body.name
    if "every" in body.model_fields_set:
        changes["every"] = checked_every(s, body.every)
    if body.config is not None:
        current = {k: v for k, v in source.config.items() if k not in CONFIGS[source.kind].SECRETS}
        config = checked_config(s, source.kind, {**current, **secrets, **body.config})
        changes["config"] = config.shown()
        secrets = config.secrets()
    source = source.model_copy(update=changes)
    s.sources.save(source, secrets)
    return shown(source, s.sources.last_runs([source])[source.id])


@router.delete("/{source_id}")
def delete_source(
    dataset_id: Id, source_id: Id, tenant: Tenant, s: Clients,
    delete_documents: Annotated[bool, Query(description="whether the source's documents are deleted too")],
) -> dict:
    """Forget the source (a run in progress stops at its next item); its documents are deleted
    too, or stay in the dataset as documents of their own, as ``delete_documents`` says."""
    source = existing_source(s, tenant, dataset_id, source_id)
    items = s.sources.remove(source)
    deleted = 0
    if delete_documents:
        publisher = ItemPublisher(s)
        deleted = sum(publisher.delete(source, known.document_id) for known in items.values())
    return {"result": "success", "documents_deleted": deleted}


@router.post("/{source_id}/sync", status_code=202)
def sync_source(dataset_id: Id, source_id: Id, tenant: Tenant, s: Clients) -> dict:
    """A run of the source, done by the sources service; the one running if there is one."""
    source = existing_source(s, tenant, dataset_id, source_id)
    try:
        run, started = s.sources.start_run(source, "manual")
    except SourceRemoved:
        raise ApiError(404, "Source not found.") from None
    return {**run.model_dump(mode="json"), "source_id": source.id, "started": started}


def existing_source(s: Services, tenant: str, dataset_id: str, source_id: str) -> Source:
    existing_dataset(s, tenant, dataset_id)
    source = s.sources.get(tenant, source_id)
    if source is None or source.dataset_id != dataset_id:
        raise ApiError(404, "Source not found.")
    return source


def checked_config(s: Services, kind: str, config: dict[str, Any]) -> KindConfig:
    try:
        parsed = parse_config(kind, config)
        if kind == "folder":
            confined(parsed.path, s.sources_settings.folder_roots)
        if not s.sources_settings.allows_private_networks(s.settings.auth):
            for url in parsed.addresses():
                check_public(url)
    except (InvalidSource, BlockedAddress) as exc:
        raise ApiError(400, str(exc)) from None
    return parsed


def checked_every(s: Services, every: int | None) -> int | None:
    least = s.sources_settings.min_every_seconds
    if every is not None and every < least:
        raise ApiError(400, f"every must be at least {least} seconds (or null: only when asked)")
    return every


def shown(source: Source, last_run: Run | None) -> dict:
    return {**source.model_dump(mode="json"), "last_run": last_run.model_dump(mode="json") if last_run else None}
