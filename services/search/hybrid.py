"""BM25, kNN, or both fused in the client (services/search/fusion.py). BM25 matches the English
stemmed subfield; kNN runs once per embedding model the datasets searched have chunks of, with
the query embedded by that model, on that model's index.

Every hit is checked against its document's searchable revision (the projected state): chunks of
a revision still being indexed, superseded, deleted, cancelled or failed are never returned, even
before Elasticsearch's next refresh shows their removal."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from elasticsearch import Elasticsearch, NotFoundError

from services.embedder.providers import EmbeddingProvider
from services.indexer.mapping import all_chunk_indices, index_name
from services.search.fusion import Fusion, rrf

Mode = Literal["hybrid", "bm25", "semantic"]
_FIELDS = [
    "content", "parent_content", "name", "document_id", "document_key", "dataset_id", "revision",
    "page", "part", "position", "kind",
]


def bm25_query(query: str) -> dict[str, Any]:
    """English stemmed text, and the document's title beside it. On the judged testbeds (nDCG@10,
    bench/ranking_lab.py): standard analyzer 0.627, english 0.658, english + title^0.5 0.672
    (title^1 0.653, ^2 0.641)."""
    return {"multi_match": {"query": query, "type": "most_fields", "fields": ["content.english", "title.english^0.5"]}}


# Document key -> the revision search may serve.
SearchableRevisions = Callable[[Iterable[str]], dict[str, int]]
# (tenant, one dataset or None for all) -> model -> the datasets with chunks embedded by it.
IndexedModels = Callable[[str, str | None], dict[str, list[str]]]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hit:
    segment_id: str
    dataset_id: str
    document_id: str
    name: str
    page: int | None
    content: str  # the parent's text for hierarchical chunks
    matched: str  # the chunk that matched
    score: float


def _filters(tenant_id: str, datasets: str | list[str] | None) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = [{"term": {"tenant_id": tenant_id}}]
    if isinstance(datasets, str):
        filters.append({"term": {"dataset_id": datasets}})
    elif datasets is not None:
        filters.append({"terms": {"dataset_id": datasets}})
    return filters


class HybridSearch:
    def __init__(
        self, es: Elasticsearch, prefix: str, providers: Callable[[str], EmbeddingProvider], models: IndexedModels,
        searchable: SearchableRevisions, fusion: Fusion = rrf,
    ):
        self.es = es
        self.fusion = fusion
        self.prefix = prefix
        self.providers = providers
        self.models = models
        self.searchable = searchable
        self.query_vector = lru_cache(maxsize=4096)(self._embed_query)

    def bm25(self, query: str, tenant_id: str, dataset_id: str | None, size: int) -> list[dict]:
        body = {
            "query": {"bool": {"must": [bm25_query(query)], "filter": _filters(tenant_id, dataset_id)}},
            "size": size,
            "_source": _FIELDS,
            # Term statistics of every index searched (one per model), not of each shard alone:
            # scores stay comparable across indices, as the embedded server computes them.
            "search_type": "dfs_query_then_fetch",
        }
        return self._search(all_chunk_indices(self.prefix), body)

    def knn(self, query: str, tenant_id: str, model: str, datasets: list[str], size: int) -> list[dict]:
        """Nearest chunks among ``datasets``' chunks embedded by ``model``, the query embedded by it too."""
        try:
            vector = self.query_vector(model, query)
        except Exception:  # noqa: BLE001 - a model that cannot embed (Cohere unreachable) costs its ranking only
            log.warning("cannot embed the query with %s: semantic hits of %s left out", model, datasets,
                        exc_info=True)
            return []
        body = {
            "knn": {
                "field": "vector",
                "query_vector": list(vector),
                "k": size,
                "num_candidates": max(100, size * 10),
                "filter": _filters(tenant_id, datasets),
            },
            "size": size,
            "_source": _FIELDS,  # never the vector itself
        }
        return self._search(index_name(self.prefix, model), body)

    def _embed_query(self, model: str, query: str) -> tuple[float, ...]:
        return tuple(self.providers(model).embed_query(query))

    def _search(self, index: str, body: dict) -> list[dict]:
        try:
            return self.es.search(index=index, allow_no_indices=True, ignore_unavailable=True, **body)["hits"]["hits"]
        except NotFoundError:
            return []

    def search(
        self, query: str, tenant_id: str, dataset_id: str | None = None, top_k: int = 5, mode: Mode = "hybrid"
    ) -> list[Hit]:
        depth = max(top_k * 4, 20)
        rankings = []
        if mode in ("hybrid", "bm25"):
            rankings.append(self.bm25(query, tenant_id, dataset_id, depth))
        if mode in ("hybrid", "semantic"):
            for model, datasets in sorted(self.models(tenant_id, dataset_id).items()):
                rankings.append(self.knn(query, tenant_id, model, datasets, depth))
        rankings = self._servable(rankings)
        hits = {h["_id"]: h for ranking in rankings for h in ranking}
        if len(rankings) == 1:
            scored = [(h["_id"], h["_score"]) for h in rankings[0]]
        else:
            scored = self.fusion([[(h["_id"], h["_score"]) for h in ranking] for ranking in rankings])
        return [_hit(hits[key], score) for key, score in scored[:top_k]]

    def _servable(self, rankings: list[list[dict]]) -> list[list[dict]]:
        """Drop hits of any revision but their document's searchable one."""
        serve = self.searchable({h["_source"]["document_key"] for ranking in rankings for h in ranking})
        return [
            [h for h in ranking if serve.get(h["_source"]["document_key"]) == h["_source"]["revision"]]
            for ranking in rankings
        ]


def _hit(hit: dict, score: float) -> Hit:
    source = hit["_source"]
    return Hit(
        segment_id=hit["_id"],
        dataset_id=source["dataset_id"],
        document_id=source["document_id"],
        name=source.get("name", ""),
        page=source.get("page"),
        content=source.get("parent_content") or source["content"],
        matched=source["content"],
        score=round(score, 6),
    )
