"""Dify's Knowledge API shapes of indexflow's datasets and document states: its field names, its
status words, epoch-second times. Native fields travel beside them where names do not clash."""

from __future__ import annotations

from datetime import datetime
from collections.abc import Mapping
from typing import Any

from schemas import DocumentState, DocumentStatus, DocumentUpserted
from services.gateway.datasets import BUILT_IN_FIELDS, DatasetRecord
from services.gateway.visibility import Visibility
from services.projector.listing import DISPLAY_STATUS
from services.projector.store import DatasetFigures

# Dify's indexing_status for each of ours: Dify has no "cancelled" (a stopped document is an error
# there) and answers 404 for a deleted one.
INDEXING_STATUS = {
    DocumentStatus.WAITING: "waiting",
    DocumentStatus.PARSING: "parsing",
    DocumentStatus.SPLITTING: "splitting",
    DocumentStatus.INDEXING: "indexing",
    DocumentStatus.COMPLETED: "completed",
    DocumentStatus.ERROR: "error",
    DocumentStatus.PAUSED: "paused",
    DocumentStatus.CANCELLED: "error",
    DocumentStatus.DELETED: "error",
}
DISPLAY_STATUSES = frozenset(DISPLAY_STATUS.values()) | {"disabled", "archived"}


def epoch(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


def _metadata_type(value: Any) -> str:
    return "number" if isinstance(value, int | float) and not isinstance(value, bool) else "string"


_BUILT_IN_TYPES = {field["name"]: field["type"] for field in BUILT_IN_FIELDS}


def doc_metadata(upsert: DocumentUpserted | None, built_in: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The document's own values, then its built-in ones (``built_in_values``) under Dify's id "built-in"."""
    metadata = upsert.metadata if upsert is not None else {}
    return [{"id": name, "name": name, "type": _metadata_type(value), "value": value}
            for name, value in metadata.items()] + [
        {"id": "built-in", "name": name, "type": _BUILT_IN_TYPES[name], "value": value}
        for name, value in (built_in or {}).items()]


def built_in_values(record: DatasetRecord | None, upsert: DocumentUpserted, created: int | None) -> dict[str, Any]:
    """Dify's built-in fields of a document, when its dataset has them switched on: its name, who
    wrote it (the API), when it was first written and last changed (epoch seconds), its source."""
    return built_in_fields(record, upsert.name, upsert.produced_at, created)


def built_in_fields(
    record: DatasetRecord | None, name: str, produced_at: datetime, created: int | None,
) -> dict[str, Any]:
    """``built_in_values`` of a document named ``name`` whose newest upsert was ``produced_at``."""
    if record is None or not record.built_in_field_enabled:
        return {}
    updated = int(produced_at.timestamp())
    return {"document_name": name, "uploader": "api", "upload_date": created or updated,
            "last_update_date": updated, "source": "file_upload"}


def display_status(status: DocumentStatus, visibility: Visibility) -> str:
    if status is DocumentStatus.COMPLETED and visibility.archived:
        return "archived"
    if status is DocumentStatus.COMPLETED and not visibility.enabled:
        return "disabled"
    return DISPLAY_STATUS[status]


def document(
    document_id: str, state: DocumentState | None, upsert: DocumentUpserted | None, position: int,
    visibility: Visibility | None = None, built_in: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Dify's document object (create, update and list answers)."""
    status = state.status if state is not None else DocumentStatus.WAITING
    visibility = visibility or Visibility()
    accepted = state.transitions.get(DocumentStatus.WAITING) if state is not None else None
    return {
        "id": document_id,
        "position": position,
        "data_source_type": "upload_file",
        "data_source_info": {},
        "data_source_detail_dict": {},
        "dataset_process_rule_id": None,
        "name": (state.name if state is not None else None) or (upsert.name if upsert is not None else document_id),
        "created_from": "api",
        "created_by": "api",
        "created_at": epoch(accepted or (upsert.produced_at if upsert is not None else None)) or 0,
        "tokens": state.token_count if state is not None else 0,
        "indexing_status": INDEXING_STATUS[status],
        "error": state.error if state is not None else None,
        "enabled": visibility.enabled,
        "disabled_at": visibility.disabled_at,
        "disabled_by": "api" if visibility.disabled_at else None,
        "archived": visibility.archived,
        "display_status": display_status(status, visibility),
        "word_count": state.word_count if state is not None else 0,
        "hit_count": 0,
        "doc_form": upsert.indexing.doc_form if upsert is not None else "text_model",
        "doc_metadata": doc_metadata(upsert, built_in),
        # Dify's summary index (an LLM's summary of each document) is not something indexflow makes.
        "need_summary": False,
        "summary_index_status": None,
    }


def average_segment_length(word_count: int, segment_count: int) -> int:
    """Dify's: the words of a segment on average, 0 for a document without segments."""
    return word_count // segment_count if word_count and segment_count else 0


def indexing_status(document_id: str, state: DocumentState | None) -> dict[str, Any]:
    """One item of Dify's indexing-status answer: when each step ended, segments done of all."""
    at = state.transitions if state is not None else {}
    status = state.status if state is not None else DocumentStatus.WAITING
    total = state.segment_count if state is not None else 0
    done = total if status is DocumentStatus.COMPLETED else round(total * state.progress) if state is not None else 0
    return {
        "id": document_id,
        "indexing_status": INDEXING_STATUS[status],
        "processing_started_at": epoch(at.get(DocumentStatus.PARSING)),
        "parsing_completed_at": epoch(at.get(DocumentStatus.SPLITTING)),
        "cleaning_completed_at": epoch(at.get(DocumentStatus.SPLITTING)),
        "splitting_completed_at": epoch(at.get(DocumentStatus.INDEXING)),
        "completed_at": epoch(at.get(DocumentStatus.COMPLETED)),
        "paused_at": epoch(at.get(DocumentStatus.PAUSED)),
        "error": state.error if state is not None else None,
        "stopped_at": epoch(at.get(DocumentStatus.CANCELLED)),
        "completed_segments": done,
        "total_segments": total,
    }


def retrieval_model(record: DatasetRecord) -> dict[str, Any]:
    """The dataset's retrieval settings, over Dify's defaults."""
    defaults = {
        "search_method": "keyword_search" if record.indexing_technique == "economy" else "hybrid_search",
        "reranking_enable": False, "reranking_mode": None,
        "reranking_model": {"reranking_provider_name": "", "reranking_model_name": ""},
        "weights": None, "top_k": 4, "score_threshold_enabled": False, "score_threshold": None,
    }
    return {**defaults, **(record.retrieval_model or {})}


def dataset(record: DatasetRecord, figures: DatasetFigures, model: str | None,
            tags: list[dict[str, Any]]) -> dict[str, Any]:
    """Dify's dataset object; ``figures`` count the dataset's documents, ``model`` is what it embeds
    with, ``tags`` Dify's tags bound to it."""
    live = figures.live
    return {
        "id": record.id,
        "name": record.name,
        "description": record.description,
        "provider": "vendor",
        "permission": record.permission,
        "data_source_type": "upload_file" if live else None,
        "indexing_technique": record.indexing_technique,
        "app_count": 0,
        "document_count": live,
        "word_count": figures.words,
        "created_by": "api",
        "author_name": None,
        "created_at": record.created_at,
        "updated_by": "api",
        "updated_at": record.updated_at,
        "embedding_model": model if record.indexing_technique != "economy" else None,
        "embedding_model_provider": record.embedding_model_provider or ("indexflow" if model else None),
        "embedding_available": True,
        "retrieval_model_dict": retrieval_model(record),
        "tags": tags,
        "doc_form": record.chunk_structure,
        "external_knowledge_info": None,
        "external_retrieval_model": None,
        "doc_metadata": [field.model_dump() for field in record.metadata_fields],
        "built_in_field_enabled": record.built_in_field_enabled,
        "ocr": record.ocr.model_dump() if record.ocr is not None else None,  # indexflow's
        "total_documents": live,
        "total_available_documents": figures.statuses[DocumentStatus.COMPLETED.value],
        "enable_api": True,
        "is_multimodal": False,
        # Dify's values for what indexflow does not have: no summary index, no knowledge pipeline
        # (a dataset is Dify's "general" kind, never published), no icon, no maintainer.
        "summary_index_setting": None,
        "pipeline_id": None,
        "runtime_mode": "general",
        "chunk_structure": record.chunk_structure,  # its documents' form, from the first one's process rule
        "icon_info": None,
        "is_published": False,
        "maintainer": None,
    }
