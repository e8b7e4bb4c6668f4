"""Dify's current Knowledge API answers, as its service API documents them (api/fields and
api/controllers/service_api/dataset of Dify, 2026): each field a client may read, with its type and
whether it is always there. An answer is checked field by field by validating it; indexflow's own
fields may travel beside them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class _Shape(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class Tag(_Shape):
    id: str
    name: str
    type: str
    binding_count: str | None = None  # a string in Dify's service API


class BoundTag(_Shape):
    id: str
    name: str


class BoundTags(_Shape):
    data: list[BoundTag]
    total: int


class DatasetTag(_Shape):
    id: str
    name: str
    type: str


class RetrievalModel(_Shape):
    search_method: str
    reranking_enable: bool
    reranking_mode: str | None = None
    reranking_model: dict[str, Any] | None
    weights: dict[str, Any] | None = None
    top_k: int
    score_threshold_enabled: bool
    score_threshold: float | None = None


class Dataset(_Shape):
    id: str
    name: str
    description: str | None
    provider: str
    permission: str
    data_source_type: str | None
    indexing_technique: str | None
    app_count: int
    document_count: int
    word_count: int
    created_by: str
    author_name: str | None
    created_at: int
    updated_by: str | None
    updated_at: int
    embedding_model: str | None
    embedding_model_provider: str | None
    embedding_available: bool | None = None
    retrieval_model_dict: RetrievalModel
    summary_index_setting: dict[str, Any] | None
    tags: list[DatasetTag]
    doc_form: str | None
    external_knowledge_info: dict[str, Any] | None
    external_retrieval_model: dict[str, Any] | None
    doc_metadata: list[dict[str, Any]]
    built_in_field_enabled: bool
    pipeline_id: str | None
    runtime_mode: str | None
    chunk_structure: str | None
    icon_info: dict[str, Any] | None
    is_published: bool
    total_documents: int
    total_available_documents: int
    enable_api: bool
    is_multimodal: bool


class DatasetWithMembers(Dataset):
    partial_member_list: list[str]


class DatasetList(_Shape):
    data: list[Dataset]
    has_more: bool
    limit: int
    total: int
    page: int


class DocumentMetadata(_Shape):
    id: str
    name: str
    type: str
    value: str | int | float | bool | None = None


class _DocumentFields(_Shape):
    """What Dify's document object and its detail both carry."""

    id: str
    position: int
    data_source_type: str
    data_source_info: dict[str, Any] | None
    dataset_process_rule_id: str | None
    name: str
    created_from: str
    created_by: str
    created_at: int
    tokens: int
    indexing_status: str
    error: str | None
    enabled: bool
    disabled_at: int | None
    disabled_by: str | None
    archived: bool
    display_status: str
    hit_count: int
    doc_form: str
    doc_metadata: list[DocumentMetadata]
    summary_index_status: str | None
    need_summary: bool


class Document(_DocumentFields):
    data_source_detail_dict: dict[str, Any] | None
    word_count: int


class DocumentAndBatch(_Shape):
    document: Document
    batch: str


class DocumentList(_Shape):
    data: list[Document]
    has_more: bool
    limit: int
    total: int
    page: int


class DocumentDetail(_DocumentFields):
    dataset_process_rule: dict[str, Any]
    document_process_rule: dict[str, Any]
    completed_at: int | None
    updated_at: int | None
    indexing_latency: float | None
    doc_type: str | None
    segment_count: int
    average_segment_length: int | float
    doc_language: str | None


class Segment(_Shape):
    id: str
    position: int
    document_id: str
    content: str
    sign_content: str
    answer: str | None
    word_count: int
    tokens: int
    keywords: list[str]
    index_node_id: str
    index_node_hash: str
    hit_count: int
    enabled: bool
    disabled_at: int | None
    disabled_by: str | None
    status: str
    created_by: str
    created_at: int
    updated_at: int
    updated_by: str | None
    indexing_at: int | None
    completed_at: int | None
    error: str | None
    stopped_at: int | None
    child_chunks: list[dict[str, Any]]
    attachments: list[dict[str, Any]]
    summary: str | None


class SegmentList(_Shape):
    data: list[Segment]
    doc_form: str
    has_more: bool
    limit: int
    total: int
    page: int


class Url(_Shape):
    url: str
