"""BM25, kNN, or both fused in the client (services/search/fusion.py). BM25 matches the English
stemmed subfield; kNN runs once per embedding model the datasets searched have chunks of, with
the query embedded by that model, on that model's index.

Every hit is checked against the revision its document serves (kept by the indexer, see
services/runtime/serving.py): chunks of a revision still being indexed, superseded, deleted,
cancelled or failed are never returned, even before Elasticsearch's next refresh shows their
removal."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Literal

from elasticsearch import Elasticsearch, NotFoundError

from services.embedder.providers import EmbeddingProvider
from services.indexer.mapping import index_name, is_model_index, tenant_alias
from services.indexer.placement import Placement
from services.runtime.metrics import SEARCH_SECONDS
from services.search.feedback import NO_FEEDBACK, Feedback, refined_query
from services.search.fusion import Fusion, ranked_by_documents, rrf
from services.search.rerank import CohereReranker, RerankUnavailable

# Dify's names; "bm25" is the older name of "full_text".
Mode = Literal["hybrid", "full_text", "semantic", "bm25"]
_FIELDS = [
    "content", "parent_content", "name", "document_id", "document_key", "dataset_id", "revision",
    "page", "part", "position", "kind", "stable_id", "parent_stable_id", "parent_id",
]


def bm25_query(query: str) -> dict[str, Any]:
    """English stemmed text, the document's title beside it, and the unstemmed text a little: a
    word as the query spells it counts more than another of its stem. On the judged testbeds
    (bench/ranking_lab.py): standard analyzer 0.627, english 0.658, english + title^0.5 0.672
    (title^1 0.653, ^2 0.641), exponential gain, 500-token chunks; then, linear gain, 200-token
    chunks, documents corroborated: 0.713, + unstemmed^0.2 0.720 (^0.3 0.718, ^0.5 0.711; a phrase
    clause with slop 3 or 10 lost 0.010)."""
    return {"multi_match": {"query": query, "type": "most_fields",
                            "fields": ["content.english", "title.english^0.5", "content^0.2"]}}


# Document key -> the revision search may serve.
SearchableRevisions = Callable[[Iterable[str]], dict[str, int]]
# (tenant, one dataset or None for all) -> model -> the datasets with chunks embedded by it.
IndexedModels = Callable[[str, str | None], dict[str, list[str]]]
# (tenant, dataset) -> which index holds the dataset's chunks (services/indexer/placement.py).
DatasetPlacement = Callable[[str, str], Placement]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scope:
    """What one search may see: always one tenant's chunks; optionally one dataset, some documents."""

    tenant_id: str
    dataset_id: str | None = None
    document_ids: tuple[str, ...] = ()
    metadata: tuple[tuple[str, str | int | float | bool], ...] = ()  # every field must have the value
    hidden_documents: tuple[str, ...] = ()  # disabled or archived: never returned

    def filters(self, datasets: list[str] | None = None) -> list[dict[str, Any]]:
        filters: list[dict[str, Any]] = [
            {"term": {"tenant_id": self.tenant_id}},
            {"bool": {"must_not": [{"term": {"enabled": False}}]}},  # chunks indexed before the flag pass
        ]
        if datasets is not None:
            filters.append({"terms": {"dataset_id": datasets}})
        elif self.dataset_id is not None:
            filters.append({"term": {"dataset_id": self.dataset_id}})
        if self.document_ids:
            filters.append({"terms": {"document_id": list(self.document_ids)}})
        if self.hidden_documents:
            filters.append({"bool": {"must_not": [{"terms": {"document_id": list(self.hidden_documents)}}]}})
        for field, value in self.metadata:
            # A flattened field keeps every value as its keyword: true as "true", 2021 as "2021".
            keyword = str(value).lower() if isinstance(value, bool) else str(value)
            filters.append({"term": {f"metadata.{field}": keyword}})
        return filters


@dataclass
class Timings:
    """Where one search's time went: the embedded Elasticsearch API server scans every chunk per
    query, so only the time outside it says anything about production."""

    elasticsearch_ms: float = 0.0
    embedding_ms: float = 0.0  # query vectors (0 when cached)
    rerank_ms: float = 0.0
    total_ms: float = 0.0

    @contextmanager
    def spent_on(self, part: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            setattr(self, part, getattr(self, part) + (time.perf_counter() - started) * 1000)

    def as_dict(self) -> dict[str, float]:
        return {name: round(value, 2) for name, value in asdict(self).items()}


@dataclass(frozen=True)
class Answer:
    records: list[Hit]
    timings: Timings
    reranked: bool | None = None  # None: not asked for
    rerank_error: str | None = None  # why the fused order stands


@dataclass(frozen=True)
class Hit:
    segment_id: str  # the chunk's id in the index
    stable_id: str  # the id its editor knows: the segment's, the same in every revision
    parent_stable_id: str | None  # hierarchical chunks: their parent segment's
    dataset_id: str
    document_id: str
    name: str
    page: int | None
    position: int
    content: str  # the parent's text for hierarchical chunks
    matched: str  # the chunk that matched
    score: float  # what the records are ranked by (fused, in hybrid mode)
    highlights: list[str]  # fragments of the chunk with the BM25 matches marked (none from kNN alone)
    scores: dict[str, float | None]  # each mode's own: BM25's, the best cosine of any model, the reranker's

    @property
    def segment_stable_id(self) -> str:
        """The segment an editor knows this hit by: a child chunk's parent, else the chunk itself."""
        return self.parent_stable_id or self.stable_id


class HybridSearch:
    def __init__(
        self, es: Elasticsearch, prefix: str, providers: Callable[[str], EmbeddingProvider], models: IndexedModels,
        searchable: SearchableRevisions, placement: DatasetPlacement, fusion: Fusion = rrf,
        reranker: CohereReranker | None = None, corroboration: float = 0.0, feedback: Feedback = NO_FEEDBACK,
    ):
        self.es = es
        self.fusion = fusion
        self.corroboration = corroboration
        self.feedback = feedback
        self.reranker = reranker
        self.prefix = prefix
        self.providers = providers
        self.models = models
        self.searchable = searchable
        self.placement = placement
        self.query_vector = lru_cache(maxsize=4096)(self._embed_query)

    def bm25(self, query: str, scope: Scope, size: int, timings: Timings) -> list[dict]:
        body = {
            "query": {"bool": {"must": [bm25_query(query)], "filter": scope.filters()}},
            "size": size,
            "_source": _FIELDS,
            # The chunk's text with what matched (stems included) marked, as Dify shows it. Markup, so
            # the text is HTML-escaped by Elasticsearch: a chunk's own tags come back inert.
            "highlight": {"fields": {"content.english": {"number_of_fragments": 3, "fragment_size": 200}},
                          "pre_tags": ["<em>"], "post_tags": ["</em>"], "encoder": "html"},
            # Term statistics of every index searched (see _indices), not of each shard alone, as
            # the embedded server computes them.
            "search_type": "dfs_query_then_fetch",
        }
        models = [*self.models(scope.tenant_id, scope.dataset_id), None]
        return self._search(self._indices(scope, models), body, timings)

    def embedded_query(self, query: str, model: str, datasets: list[str], timings: Timings) -> Sequence[float] | None:
        """The query embedded by ``model``; None when it cannot be (Cohere unreachable), which costs
        that model's ranking only."""
        try:
            with timings.spent_on("embedding_ms"):
                return self.query_vector(model, query)
        except Exception:  # noqa: BLE001 - logged, and the other rankings still answer
            log.warning("cannot embed the query with %s: semantic hits of %s left out", model, datasets,
                        exc_info=True)
            return None

    def knn(
        self, vector: Sequence[float] | None, scope: Scope, model: str, datasets: list[str], size: int, timings: Timings,
    ) -> list[dict]:
        """Nearest chunks to ``vector`` among ``datasets``' chunks embedded by ``model``."""
        if vector is None:
            return []
        body = {
            "knn": {
                "field": "vector",
                "query_vector": list(vector),
                "k": size,
                "num_candidates": max(100, size * 10),
                "filter": scope.filters(datasets),
            },
            "size": size,
            "_source": _FIELDS,  # never the vector itself
        }
        return self._search(self._indices(scope, [model]), body, timings)

    def refined_knn(
        self, vector: Sequence[float] | None, scope: Scope, model: str, datasets: list[str], size: int,
        timings: Timings, fused: list[tuple[str, float]], hits: dict[str, dict],
    ) -> list[dict] | None:
        """kNN again with the query moved toward the best fused chunks of ``model``'s indices
        (services/search/feedback.py); None when none of them has a vector to learn from."""
        if vector is None:
            return None
        own = [hits[key] for key, _ in fused if is_model_index(self.prefix, model, hits[key]["_index"])]
        top = own[: self.feedback.chunks]
        if not top:
            return None
        with timings.spent_on("elasticsearch_ms"):
            found = self.es.mget(docs=[{"_index": h["_index"], "_id": h["_id"], "_source": ["vector"]} for h in top])
        vectors = [d["_source"]["vector"] for d in found["docs"] if d.get("found") and d["_source"].get("vector")]
        if not vectors:
            return None
        return self.knn(refined_query(vector, vectors, self.feedback.weight), scope, model, datasets, size, timings)

    def _indices(self, scope: Scope, models: list[str | None]) -> str:
        """The indices of ``models``' chunks a search of ``scope`` names: the dataset's (its own or
        its tenant's shared one, as placed) or, for all the tenant's datasets, the tenant's alias;
        and the per-model ones of before. Never another tenant's: Elasticsearch scores BM25 with
        the statistics of every index named, whatever the filter leaves."""
        tenant, dataset = scope.tenant_id, scope.dataset_id
        if dataset is None:
            searched = [tenant_alias(self.prefix, model, tenant) for model in models]
        else:
            placement = self.placement(tenant, dataset)
            searched = [placement.index(self.prefix, model, tenant, dataset) for model in models]
        return ",".join([*searched, *(index_name(self.prefix, model) for model in models)])

    def _embed_query(self, model: str, query: str) -> tuple[float, ...]:
        return tuple(self.providers(model).embed_query(query))

    def _search(self, index: str, body: dict, timings: Timings) -> list[dict]:
        try:
            with timings.spent_on("elasticsearch_ms"):
                response = self.es.search(index=index, allow_no_indices=True, ignore_unavailable=True, **body)
        except NotFoundError:
            return []
        return response["hits"]["hits"]

    def search(
        self, query: str, scope: Scope, top_k: int = 5, mode: Mode = "hybrid", score_threshold: float | None = None,
        rerank: bool = False, fusion: Fusion | None = None,
    ) -> Answer:
        """``fusion``: this search's own (a caller's vector weight), instead of the deployment's."""
        started = time.perf_counter()
        timings = Timings()
        depth = max(top_k * 4, 20)
        with_lexical, with_semantic = mode != "semantic", mode in ("hybrid", "semantic")
        lexical = self.bm25(query, scope, depth, timings) if with_lexical else []
        models = sorted(self.models(scope.tenant_id, scope.dataset_id).items()) if with_semantic else []
        vectors = [self.embedded_query(query, model, datasets, timings) for model, datasets in models]
        semantic = [self.knn(v, scope, m, d, depth, timings) for v, (m, d) in zip(vectors, models)]
        lexical, *semantic = self._servable([lexical, *semantic])
        scored, hits = self._fused(lexical if with_lexical else None, semantic, fusion)
        if with_lexical and semantic and self.feedback.chunks:
            refined = [self.refined_knn(v, scope, m, d, depth, timings, scored, hits) for v, (m, d) in zip(vectors, models)]
            if any(r is not None for r in refined):
                served = self._servable([r or [] for r in refined])
                semantic = [s if r is None else again for s, r, again in zip(semantic, refined, served)]
                scored, hits = self._fused(lexical, semantic, fusion)
        if not with_semantic and scored and scored[0][1] > 0:
            # BM25 has no scale of its own: a full-text score is relative to the query's best match,
            # so that scores of every mode lie in 0..1 (the raw BM25 stays in scores["full_text"]).
            best = scored[0][1]
            scored = [(key, score / best) for key, score in scored]
        reranked, rerank_error, relevance = None, None, {}
        if rerank:
            with timings.spent_on("rerank_ms"):
                scored, relevance, rerank_error = self._rerank(query, scored[:depth], hits)
            reranked = rerank_error is None
        if score_threshold is not None:
            scored = [(key, score) for key, score in scored if score >= score_threshold]
        full_text = {h["_id"]: h["_score"] for h in lexical}
        highlights = {h["_id"]: h.get("highlight", {}).get("content.english", []) for h in lexical}
        cosine: dict[str, float] = {}
        for ranking in semantic:
            for h in ranking:
                cosine[h["_id"]] = max(cosine.get(h["_id"], 0.0), h["_score"])
        records = [
            _hit(hits[key], score, highlights.get(key, []), {
                "full_text": full_text.get(key) if with_lexical else None,
                "semantic": cosine.get(key) if with_semantic else None,
                **({"rerank": relevance.get(key)} if reranked else {}),
            })
            for key, score in scored[:top_k]
        ]
        timings.total_ms = (time.perf_counter() - started) * 1000
        SEARCH_SECONDS.labels(mode, "elasticsearch").observe(timings.elasticsearch_ms / 1000)
        SEARCH_SECONDS.labels(mode, "gateway").observe((timings.total_ms - timings.elasticsearch_ms) / 1000)
        return Answer(records, timings, reranked, rerank_error)

    def _fused(
        self, lexical: list[dict] | None, semantic: list[list[dict]], fusion: Fusion | None,
    ) -> tuple[list[tuple[str, float]], dict[str, dict]]:
        """Chunk ids ranked by services/search/fusion.py, and every hit by id."""
        rankings = ([] if lexical is None else [lexical]) + semantic
        hits = {h["_id"]: h for ranking in rankings for h in ranking}
        document_of = {key: h["_source"]["document_key"] for key, h in hits.items()}
        scored = ranked_by_documents(
            [[(h["_id"], h["_score"]) for h in ranking] for ranking in rankings], document_of, fusion or self.fusion,
            self.corroboration,
        )
        return scored, hits

    def _rerank(
        self, query: str, candidates: list[tuple[str, float]], hits: dict[str, dict]
    ) -> tuple[list[tuple[str, float]], dict[str, float], str | None]:
        """The candidates in the reranker's order with its scores, or as they were with the reason."""
        if self.reranker is None:
            return candidates, {}, "reranking is not configured"
        if not candidates:
            return candidates, {}, None
        try:
            order = self.reranker.rerank(query, [hits[key]["_source"]["content"] for key, _ in candidates],
                                         len(candidates))
        except RerankUnavailable as exc:
            log.warning("rerank unavailable, the fused order stands: %s", exc)
            return candidates, {}, str(exc)
        reranked = [(candidates[index][0], score) for index, score in order]
        return reranked, dict(reranked), None

    def _servable(self, rankings: list[list[dict]]) -> list[list[dict]]:
        """Drop hits of any revision but their document's searchable one."""
        serve = self.searchable({h["_source"]["document_key"] for ranking in rankings for h in ranking})
        return [
            [h for h in ranking if serve.get(h["_source"]["document_key"]) == h["_source"]["revision"]]
            for ranking in rankings
        ]


def _hit(hit: dict, score: float, highlights: list[str], scores: dict[str, float | None]) -> Hit:
    source = hit["_source"]
    return Hit(
        segment_id=hit["_id"],
        stable_id=source.get("stable_id") or hit["_id"],
        parent_stable_id=source.get("parent_stable_id") or source.get("parent_id"),
        dataset_id=source["dataset_id"],
        document_id=source["document_id"],
        name=source.get("name", ""),
        page=source.get("page"),
        position=source.get("position", 0),
        content=source.get("parent_content") or source["content"],
        matched=source["content"],
        score=round(score, 6),
        highlights=highlights,
        scores={mode: round(value, 6) if value is not None else None for mode, value in scores.items()},
    )
