"""Dify's retrieval model (how a dataset, or one request, searches), every field typed and bounded:
a bad value is refused as it arrives (400), never a 500 where it is used, and nothing beyond
Dify's fields is kept, so what a dataset stores stays small and flat."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from services.search.metadata_filter import MetadataCondition

if TYPE_CHECKING:
    from services.search.hybrid import Mode

SearchMethod = Literal["hybrid_search", "semantic_search", "full_text_search", "keyword_search"]
MAX_MODEL_NAME_CHARS = 256  # a provider's or model's name
_BOUNDED = ConfigDict(allow_inf_nan=False)  # JSON parsers here take NaN and Infinity


class VectorSetting(BaseModel):
    model_config = _BOUNDED
    vector_weight: float = Field(ge=0.0, le=1.0)
    embedding_provider_name: str = Field(default="", max_length=MAX_MODEL_NAME_CHARS)
    embedding_model_name: str = Field(default="", max_length=MAX_MODEL_NAME_CHARS)


class KeywordSetting(BaseModel):
    model_config = _BOUNDED
    keyword_weight: float = Field(ge=0.0, le=1.0)


class DifyWeights(BaseModel):
    weight_type: Literal["semantic_first", "keyword_first", "customized"] | None = None
    vector_setting: VectorSetting | None = None
    keyword_setting: KeywordSetting | None = None

    def vector_weight(self) -> float | None:
        vector = self.vector_setting.vector_weight if self.vector_setting is not None else None
        keyword = self.keyword_setting.keyword_weight if self.keyword_setting is not None else None
        if vector is None and keyword is None:
            return None
        vector, keyword = vector or 0.0, keyword or 0.0
        return vector / (vector + keyword) if vector + keyword > 0 else None


class RerankingModel(BaseModel):
    reranking_provider_name: str | None = Field(default=None, max_length=MAX_MODEL_NAME_CHARS)
    reranking_model_name: str | None = Field(default=None, max_length=MAX_MODEL_NAME_CHARS)


class RetrievalSettings(BaseModel):
    """A dataset's retrieval settings: any of Dify's fields, each over Dify's default
    (services/gateway/dify.py ``retrieval_model``). Serialized as given, never with the defaults
    below, which only type the fields."""

    model_config = _BOUNDED
    search_method: SearchMethod = "hybrid_search"
    reranking_enable: bool = False
    reranking_mode: Literal["reranking_model", "weighted_score"] | None = None
    reranking_model: RerankingModel | None = None
    weights: DifyWeights | None = None
    top_k: int = Field(default=4, ge=1, le=100)
    score_threshold_enabled: bool = False
    score_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    metadata_filtering_conditions: MetadataCondition | None = None

    @model_serializer(mode="wrap")
    def _as_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {name: value for name, value in handler(self).items() if name in self.model_fields_set}


class DifyRetrievalModel(RetrievalSettings):
    """Dify's retrieval_model of a search; the four fields Dify requires are required."""

    search_method: SearchMethod
    reranking_enable: bool
    top_k: int = Field(ge=1, le=100)
    score_threshold_enabled: bool

    @property
    def mode(self) -> Mode:
        return {"hybrid_search": "hybrid", "semantic_search": "semantic"}.get(self.search_method, "full_text")
