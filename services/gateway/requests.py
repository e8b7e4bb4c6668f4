"""Request bodies of the gateway: the native fields, and Dify's Knowledge API fields read into them
(a Dify client's body means what it means in Dify, or is refused up front with the reason)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from schemas import IndexingSpec, OcrSpec, ProcessRule
from schemas.documents import Metadata, MetadataKey
from schemas.edited import SegmentText
from schemas.envelope import Id
from services.gateway.dataset_tags import MAX_TAG_NAME_CHARS
from services.gateway.errors import ApiError
from services.gateway.retrieval_model import MAX_MODEL_NAME_CHARS, DifyRetrievalModel, RetrievalSettings
from services.search.hybrid import Mode, Scope
from services.search.metadata_filter import MetadataCondition, Restriction

MAX_QUERY_CHARS = 4096
MAX_NAME_CHARS = 512  # as DocumentUpserted.name
MAX_SEPARATOR_CHARS = 256
MAX_PRE_PROCESSING_RULES = 2  # one of each kind
# What Dify's segmentation means when a field is left out (its own defaults, not ours).
_DIFY_SEGMENTATION_DEFAULTS = {"separator": "\n", "chunk_overlap": 0}


def from_dify_process_rule(rule: Any) -> Any:
    """Dify nests a rule's settings under ``rules`` and calls a whole-document parent ``full-doc``;
    for ``automatic`` it ignores them. Native rules pass through unchanged."""
    if not isinstance(rule, dict) or "rules" not in rule:
        return rule
    mode = rule.get("mode", "custom")
    if mode == "automatic":
        return {"mode": "automatic"}
    rules = rule.get("rules") or {}
    flat: dict[str, Any] = {"mode": mode}
    if "pre_processing_rules" in rules:
        flat["pre_processing_rules"] = rules["pre_processing_rules"]
    for field in ("segmentation", "subchunk_segmentation"):
        if isinstance(rules.get(field), dict):
            given = {k: v for k, v in rules[field].items() if v is not None}
            if "separator" in given:  # Dify's form sends "\\n" for a newline
                given["separator"] = given["separator"].replace("\\n", "\n")
            flat[field] = {**_DIFY_SEGMENTATION_DEFAULTS, **given}
    if rules.get("parent_mode") is not None:
        flat["parent_mode"] = str(rules["parent_mode"]).replace("-", "_")
    return flat


class DocumentOptions(BaseModel):
    # None: the dataset's technique, else high_quality.
    indexing_technique: Literal["high_quality", "economy"] | None = None
    process_rule: ProcessRule = Field(default_factory=ProcessRule)
    doc_form: Literal["text_model", "hierarchical_model"] | None = None
    embedding_model: str | None = Field(default=None, max_length=128)
    metadata: Metadata = Field(default_factory=dict)
    # Dify's, kept on the dataset when it has none yet.
    embedding_model_provider: str | None = Field(default=None, max_length=MAX_MODEL_NAME_CHARS)
    retrieval_model: RetrievalSettings | None = None
    # Dify's qa_model writes questions in it; nothing else reads it.
    doc_language: str | None = Field(default=None, max_length=64)
    # None: the document's current setting (an update), else the dataset's, else OCR on in the
    # deployment's languages.
    ocr: OcrSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_dify(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if data.get("doc_form") == "qa_model":
            raise ValueError(
                "doc_form 'qa_model' (question-answer pairs written by an LLM) is not something indexflow does: "
                "use 'text_model' or 'hierarchical_model'"
            )
        if "process_rule" in data:
            data = {**data, "process_rule": from_dify_process_rule(data["process_rule"])}
        if data.get("process_rule") is None:
            data = {k: v for k, v in data.items() if k != "process_rule"}
        return data

    @model_validator(mode="after")
    def _rule_bounded(self) -> DocumentOptions:
        # The rule travels in every record of the document.
        rule = self.process_rule
        if any(len(s.separator) > MAX_SEPARATOR_CHARS for s in (rule.segmentation, rule.subchunk_segmentation)):
            raise ValueError(f"a process_rule separator has at most {MAX_SEPARATOR_CHARS} characters")
        if len(rule.pre_processing_rules) > MAX_PRE_PROCESSING_RULES:
            raise ValueError(f"process_rule has at most {MAX_PRE_PROCESSING_RULES} pre_processing_rules")
        return self

    def indexing(self, technique: str, ocr: OcrSpec) -> IndexingSpec:
        doc_form = self.doc_form or ("hierarchical_model" if self.process_rule.mode == "hierarchical" else "text_model")
        try:
            return IndexingSpec(
                process_rule=self.process_rule,
                indexing_technique=technique,
                doc_form=doc_form,
                embedding_model=self.embedding_model,
                ocr=ocr,
            )
        except ValidationError as exc:
            raise ApiError(400, "; ".join(e["msg"] for e in exc.errors())) from exc


class CreateByText(DocumentOptions):
    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    text: str
    document_id: Id | None = None


class UpdateByText(DocumentOptions):
    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_CHARS)
    text: str


class FileOptions(DocumentOptions):
    document_id: Id | None = None
    original_document_id: Id | None = Field(default=None, description="Dify's: the document this file updates")


class DatasetCreate(BaseModel):
    """Dify's dataset body."""

    name: str = Field(min_length=1, max_length=40)
    description: str = Field(default="", max_length=400)
    indexing_technique: Literal["high_quality", "economy"] | None = None
    permission: Literal["only_me", "all_team_members", "partial_members"] = "only_me"
    provider: Literal["vendor"] = Field(
        default="vendor", description="'external' (a knowledge base elsewhere) is Dify's, not indexflow's"
    )
    embedding_model: str | None = Field(default=None, max_length=128)
    embedding_model_provider: str | None = Field(default=None, max_length=MAX_MODEL_NAME_CHARS)
    retrieval_model: RetrievalSettings | None = None
    ocr: OcrSpec | None = Field(default=None, description="OCR of its documents' images and scans, unless they say")


class DatasetUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=40)
    description: str | None = Field(default=None, max_length=400)
    indexing_technique: Literal["high_quality", "economy"] | None = None
    permission: Literal["only_me", "all_team_members", "partial_members"] | None = None
    embedding_model: str | None = Field(default=None, max_length=128)
    embedding_model_provider: str | None = Field(default=None, max_length=MAX_MODEL_NAME_CHARS)
    retrieval_model: RetrievalSettings | None = None
    ocr: OcrSpec | None = None  # for documents written from now on


class SearchPlan(BaseModel):
    """What one search does, from the native fields or Dify's retrieval model."""

    mode: Mode
    top_k: int
    score_threshold: float | None
    rerank: bool
    vector_weight: float | None
    metadata: MetadataCondition | None


class RetrieveRequest(BaseModel):
    # Bounded: a huge query is thousands of terms, each a posting-list scan on every shard.
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    dataset_id: Id | None = Field(default=None, description="/v1/retrieve only: one dataset, or all of the tenant's")
    top_k: int = Field(default=5, ge=1, le=100)
    mode: Mode = "hybrid"
    score_threshold: float | None = Field(default=None, description="records scoring below it are left out")
    document_ids: list[Id] = Field(default_factory=list, max_length=100, description="only these documents")
    rerank: bool = Field(default=False, description="reorder the candidates by the configured rerank model")
    metadata: dict[MetadataKey, str | int | float | bool] = Field(
        default_factory=dict, max_length=20, description="only documents whose metadata has each of these values",
    )

    retrieval_model: DifyRetrievalModel | None = Field(
        default=None, description="Dify's: when given, it decides mode, top_k, threshold, rerank and weights",
    )

    def scope(self, tenant: str, dataset_id: str | None, restricted: Restriction | None = None,
              hidden: Iterable[str] = ()) -> Scope:
        """``restricted``: the documents a metadata condition lets through (None: no condition);
        ``hidden``: documents disabled or archived."""
        documents, excluded = set(self.document_ids), frozenset[str]()
        if restricted is not None and restricted.only is not None:
            documents = documents & restricted.only if documents else set(restricted.only)
        elif restricted is not None:
            excluded = restricted.excluded
        return Scope(tenant, dataset_id, tuple(sorted(documents)), tuple(sorted(self.metadata.items())),
                     (*hidden, *sorted(excluded)))

    def plan(self, dataset_default: dict[str, Any] | None = None) -> SearchPlan:
        """The Dify retrieval model sent, else the native fields; a body with neither (Dify's
        default request) takes the dataset's retrieval settings."""
        given = self.retrieval_model
        if given is None and dataset_default is not None and not self.model_fields_set - {"query"}:
            given = DifyRetrievalModel.model_validate(dataset_default)
        if given is None:
            return SearchPlan(mode=self.mode, top_k=self.top_k, score_threshold=self.score_threshold,
                              rerank=self.rerank, vector_weight=None, metadata=None)
        return SearchPlan(
            mode=given.mode, top_k=given.top_k,
            # Dify applies no threshold to full-text scores.
            score_threshold=(given.score_threshold
                             if given.score_threshold_enabled and given.mode != "full_text" else None),
            rerank=given.reranking_enable and given.reranking_mode != "weighted_score",
            vector_weight=given.weights.vector_weight() if given.weights is not None else None,
            metadata=given.metadata_filtering_conditions,
        )


class ModelSwitch(BaseModel):
    embedding_model: str = Field(min_length=1, max_length=128)


class NewSegment(BaseModel):
    content: SegmentText
    # Dify's Q&A answer and economy keywords: indexflow indexes neither (qa_model is refused up front).
    answer: str | None = None
    keywords: list[str] | None = None


class NewSegments(BaseModel):
    segments: list[NewSegment] = Field(min_length=1, max_length=1000)


class SegmentChange(BaseModel):
    content: SegmentText | None = None
    answer: str | None = None
    keywords: list[str] | None = None
    enabled: bool | None = None
    regenerate_child_chunks: bool = False


class UpdateSegment(BaseModel):
    segment: SegmentChange


class ChildChunkText(BaseModel):
    content: SegmentText


MAX_TAG_IDS = 1000  # tags named in one binding or unbinding


class TagName(BaseModel):
    name: str = Field(min_length=1, max_length=MAX_TAG_NAME_CHARS)


class TagRename(TagName):
    tag_id: Id


class TagDelete(BaseModel):
    tag_id: Id


class TagBinding(BaseModel):
    tag_ids: list[Id] = Field(min_length=1, max_length=MAX_TAG_IDS)
    target_id: Id


class TagUnbinding(BaseModel):
    """Dify's ``tag_ids``, or the single ``tag_id`` of its older clients."""

    tag_ids: list[Id] = Field(default_factory=list, max_length=MAX_TAG_IDS)
    tag_id: Id | None = None
    target_id: Id

    @model_validator(mode="after")
    def _some_tag(self) -> TagUnbinding:
        if not self.tag_ids and self.tag_id is None:
            raise ValueError("tag_ids (or tag_id) names the tags to unbind")
        return self

    @property
    def named(self) -> list[str]:
        return self.tag_ids or [self.tag_id]
