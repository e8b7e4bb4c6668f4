"""Fusing rankings (BM25 and one kNN ranking per model) into one, in the client: Elasticsearch's
own RRF needs a paid licence. A ranking is a list of (key, score), best first."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

Ranking = Sequence[tuple[Hashable, float]]  # chunk ids, or documents standing for their best chunk
Fusion = Callable[[list[Ranking]], list[tuple[Hashable, float]]]
RRF_K = 60


def ranked_by_documents(
    rankings: list[Ranking], document_of: Mapping[str, str], fusion: Fusion, corroboration: float
) -> list[tuple[str, float]]:
    """Chunks ranked with their documents' evidence: each document's best chunk carries the
    document's fused score, every other chunk its own fused score (on the same scale), so a
    document with many chunks does not fill the answer with its weak ones.

    A document's score in one ranking is its best chunk's, raised by ``corroboration`` times its
    next best (a document matching in two places outranks one matching as well once); fused, it is
    built from its best chunk in each ranking, so a document whose BM25 and kNN matches are
    different chunks is not split into two half-scored candidates. Measured through the pipeline
    on the judged testbeds (nDCG@10 over the documents of the top 50 chunks, linear gain): hybrid
    0.724 when every chunk took its document's score (the top 50 chunks covered 12.6 documents),
    0.742 now; corroboration 0.3 lifts BM25 0.703 -> 0.707 and MiniLM 0.723 -> 0.734."""
    marked = [_documents_marked(ranking, document_of, corroboration) for ranking in rankings]
    chunks = list(rankings[0]) if len(rankings) == 1 else fusion(rankings)
    documents = marked[0] if len(marked) == 1 else fusion(marked)
    document_score = {key.document: score for key, score in documents if isinstance(key, _Document)}
    scored, seen = [], set()
    for key, score in sorted(chunks, key=lambda item: item[1], reverse=True):
        document = document_of[key]
        scored.append((key, score if document in seen else document_score[document]))
        seen.add(document)
    return sorted(scored, key=lambda item: item[1], reverse=True)


@dataclass(frozen=True)
class _Document:
    document: str


def _documents_marked(ranking: Ranking, document_of: Mapping[str, str], corroboration: float) -> Ranking:
    """The ranking with each document's best chunk standing for the document, raised by its next
    best chunk (the ranking's lowest score when it has none); the other chunks stay, so a fusion's
    scaling (min and max, ranks) is the chunks'."""
    if not ranking:
        return []
    floor = min(score for _, score in ranking)
    scores: dict[str, list[float]] = {}
    for key, score in ranking:
        scores.setdefault(document_of[key], []).append(score)
    marked, seen = [], set()
    for key, score in ranking:
        document = document_of[key]
        if document in seen:
            marked.append((key, score))
            continue
        seen.add(document)
        best = scores[document]
        marked.append((_Document(document), score + corroboration * (best[1] if len(best) > 1 else floor)))
    return sorted(marked, key=lambda item: item[1], reverse=True)


def rrf(rankings: list[Ranking], k: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: ranks only, scores ignored."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, (key, _) in enumerate(ranking):
            fused[key] = fused.get(key, 0.0) + 1.0 / (k + rank + 1)
    return sorted(fused.items(), key=lambda item: item[1], reverse=True)


def weighted_minmax(rankings: list[Ranking], weights: Sequence[float]) -> list[tuple[str, float]]:
    """Each ranking's scores scaled to 0..1 by its own min and max, then a weighted sum (a key
    absent from a ranking gets 0 from it)."""
    fused: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights):
        if not ranking:
            continue
        scores = [score for _, score in ranking]
        low, span = min(scores), (max(scores) - min(scores)) or 1.0
        for key, score in ranking:
            fused[key] = fused.get(key, 0.0) + weight * (score - low) / span
    return sorted(fused.items(), key=lambda item: item[1], reverse=True)


def vector_weighted(vector_weight: float) -> Fusion:
    """Min-max fusion of [BM25, kNN...]: the kNN rankings share ``vector_weight``, BM25 the rest."""

    def fuse(rankings: list[Ranking]) -> list[tuple[str, float]]:
        vectors = max(len(rankings) - 1, 1)
        return weighted_minmax(rankings, [1.0 - vector_weight] + [vector_weight / vectors] * (len(rankings) - 1))

    return fuse

