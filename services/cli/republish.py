"""Move a tenant's datasets to another indexflow deployment (from the embedded stack to Apache Kafka
and Elasticsearch, say): each live document is published again through the target's gateway from
its newest upsert and the blob store, under its own id, with its name, metadata and indexing
options, so the target builds its own revisions, chunks and states. Datasets keep their id, name,
description, retrieval settings and metadata fields.

A document given as its edited segments (Dify's segment routes) has no source to publish: it is
reported, never silently left behind."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import orjson

from schemas import DocumentStatus, DocumentUpserted
from schemas.documents import InlineSource
from schemas.edited import SEGMENT_LIST_MIME
from services.gateway.datasets import DatasetCatalog, DatasetRecord
from services.projector.store import StateStore
from services.runtime.blobs import BlobStore
from services.runtime.redis_client import redis_client
from services.runtime.registry import DocumentRegistry
from services.runtime.settings import Settings


@dataclass
class RepublishReport:
    datasets: list[str] = field(default_factory=list)
    published: int = 0
    unchanged: int = 0  # the target had it already (a re-run after an interruption)
    skipped: dict[str, str] = field(default_factory=dict)  # document (or empty dataset) id -> why


def republish(settings: Settings, tenant: str, target: httpx.Client, datasets: list[str] | None = None,
              ) -> RepublishReport:
    """``target``: a client of the target gateway, its base URL and credentials (or X-Tenant-Id)."""
    client = redis_client(settings)
    blobs = BlobStore(settings)
    registry = DocumentRegistry(client, settings.keys, blobs)
    states = StateStore(client, settings.keys)
    report = RepublishReport()
    for record in DatasetCatalog(client, settings.keys).all(tenant):
        if datasets and record.id not in datasets:
            continue
        keys = [s.key for s in states.dataset(tenant, record.id) if s.status is not DocumentStatus.DELETED]
        upserts = registry.newest_upserts(keys).values()
        if not upserts:  # its id comes with its first document: an empty one is made anew on the target
            report.skipped[record.id] = f"dataset {record.name!r} has no documents: create it on the target"
            continue
        for upsert in upserts:
            if upsert.mime_type == SEGMENT_LIST_MIME:
                report.skipped[upsert.document_id] = "given as edited segments: no source file or text to publish"
                continue
            answer = _publish(target, record.id, upsert, blobs)
            report.unchanged += answer.get("unchanged", False)
            report.published += not answer.get("unchanged", False)
        _settle_dataset(target, record)
        report.datasets.append(record.id)
    return report


def _publish(target: httpx.Client, dataset: str, upsert: DocumentUpserted, blobs: BlobStore) -> dict:
    indexing = upsert.indexing
    options = {
        "document_id": upsert.document_id, "name": upsert.name, "metadata": upsert.metadata,
        "indexing_technique": indexing.indexing_technique, "doc_form": indexing.doc_form,
        "process_rule": indexing.process_rule.model_dump(mode="json"), "embedding_model": indexing.embedding_model,
        "ocr": indexing.ocr.model_dump(mode="json"),
    }
    bulk = {"X-Priority": "bulk"}  # an import: interactive writes on the target go first
    if isinstance(upsert.source, InlineSource):
        response = target.post(f"/v1/datasets/{dataset}/document/create-by-text", headers=bulk,
                               json={**options, "text": upsert.source.text})
    else:
        response = target.post(f"/v1/datasets/{dataset}/document/create-by-file", headers=bulk,
                               files={"file": (upsert.name, blobs.source_of(upsert))},
                               data={"data": orjson.dumps(options).decode()})
    _check(response, f"document {upsert.document_id}")
    return response.json()


def _settle_dataset(target: httpx.Client, record: DatasetRecord) -> None:
    """The dataset's own settings and fields, on the record its first document made."""
    settings = {"name": record.name, "description": record.description, "permission": record.permission}
    if record.retrieval_model:
        settings["retrieval_model"] = record.retrieval_model
    _check(target.patch(f"/v1/datasets/{record.id}", json=settings), f"dataset {record.id}")
    existing = {f["name"] for f in target.get(f"/v1/datasets/{record.id}/metadata").json()["doc_metadata"]}
    for metadata_field in record.metadata_fields:
        if metadata_field.name not in existing:
            _check(target.post(f"/v1/datasets/{record.id}/metadata",
                               json={"type": metadata_field.type, "name": metadata_field.name}),
                   f"metadata field {metadata_field.name}")


def _check(response: httpx.Response, what: str) -> None:
    if response.is_error:
        raise RepublishError(f"the target refused {what}: {response.status_code} {response.text[:300]}")


class RepublishError(RuntimeError):
    """The target gateway answered with an error; what was published before it stays published."""
