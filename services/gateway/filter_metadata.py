"""Each live document's metadata as a metadata filter checks it: its own values and, with its
dataset's built-in fields switched on, theirs. Read as the JSON the state Redis keeps, never built
into models: a filtered search checks every document of the datasets it searches, and a model per
document (its whole state and upsert validated) was most of such a search's CPU in the gateway,
held under the GIL every tenant's requests share."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas import DocumentStatus, document_key
from services.gateway import dify
from services.gateway.services import Services


def filter_metadata(s: Services, tenant: str, dataset_id: str) -> dict[str, dict[str, Any]]:
    """Document id -> its metadata, for the dataset's documents not deleted."""
    live = [state["document_id"] for state in s.states.dataset_json(tenant, dataset_id)
            if state.get("status") != DocumentStatus.DELETED.value]
    if not live:
        return {}
    registered = s.publisher.registry.newest_upserts_json([document_key(tenant, d) for d in live])
    upserts = {key.partition("/")[2]: upsert for key, upsert in registered.items()}
    record = s.catalog.get(tenant, dataset_id)
    if record is None or not record.built_in_field_enabled:
        return {document: upsert.get("metadata", {}) for document, upsert in upserts.items()}
    created = s.catalog.created(tenant, dataset_id, list(upserts))
    return {
        document: {**upsert.get("metadata", {}), **dify.built_in_fields(
            record, upsert["name"], datetime.fromisoformat(upsert["produced_at"]), created.get(document))}
        for document, upsert in upserts.items()
    }
