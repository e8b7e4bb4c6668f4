"""Search settings (``INDEXFLOW_SEARCH_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.search.feedback import Feedback
from services.search.fusion import Fusion, rrf, vector_weighted


class SearchSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INDEXFLOW_SEARCH_", extra="ignore")

    # How hybrid search fuses BM25 with the kNN rankings. On the judged testbeds (MiniLM over
    # 200-token chunks, English BM25, documents ranked as fusion.ranked_by_documents does;
    # bench/ranking_lab.py) nDCG@10 (linear gain): weighted min-max 0.752 at a vector weight of
    # 0.5, 0.753 at 0.6 and 0.7; RRF 0.748; min-max over standardised scores at most 0.751. With
    # the query feedback below (weight 1.0): 0.755 at 0.5, 0.764 at 0.6, 0.760 at 0.7. (With USE, the weaker
    # model, 0.3 was best.)
    fusion: Literal["rrf", "weighted"] = "weighted"
    # weighted only: the share of the kNN rankings (RAGFlow's default is 0.3), BM25 has the rest.
    vector_weight: float = Field(default=0.6, ge=0.0, le=1.0)
    # Hybrid search asks kNN again with the query moved toward the best fused chunks
    # (services/search/feedback.py): how many of them (0: never), and their weight beside the query.
    feedback_chunks: int = Field(default=3, ge=0, le=20)
    feedback_weight: float = Field(default=1.0, ge=0.0, le=2.0)
    # Cohere rerank model (e.g. rerank-v3.5) for requests that ask for reranking; unset: none.
    # Credentials and endpoint are Cohere's (CO_API_KEY, INDEXFLOW_EMBEDDING_COHERE_BASE_URL).
    rerank_model: str | None = None
    # A document's score in each ranking is its best chunk's plus this share of its next best
    # (services/search/fusion.py ranked_by_documents); 0 ranks documents by their best chunk alone.
    corroboration: float = Field(default=0.3, ge=0.0, le=1.0)
    rerank_timeout_seconds: float = Field(default=5.0, gt=0)

    def query_feedback(self) -> Feedback:
        return Feedback(self.feedback_chunks, self.feedback_weight)

    def fuse(self) -> Fusion:
        return rrf if self.fusion == "rrf" else vector_weighted(self.vector_weight)
