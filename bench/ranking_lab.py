"""Ranking choices measured side by side on the judged testbeds, quickly enough to try many: the
testbeds chunked by the pipeline's own splitter, embedded once (vectors cached on disk), BM25
computed by the Elasticsearch API server (one small index per testbed), vectors compared exactly
in numpy, documents ranked by their best chunk. What wins here is then confirmed through the whole
pipeline by bench/retrieval_quality.py.

    .venv/bin/indexflow up      # its Elasticsearch API server
    .venv/bin/python -m bench.ranking_lab [--testbeds N] [--model NAME] [--max-tokens 500] [--titled]
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from elasticsearch import Elasticsearch, helpers

from bench.testbeds import Testbed, load_testbeds, ndcg_at_10
from schemas import ProcessRule, Segmentation
from services.embedder.models import EmbeddingSettings, load_provider
from services.embedder.providers import EmbeddingProvider
from services.extractor.titles import title_of
from services.indexer.mapping import mapping
from services.runtime.elasticsearch_client import elasticsearch_client
from services.runtime.settings import Settings
from services.search.feedback import refined_query
from services.search.fusion import Fusion, ranked_by_documents, rrf, vector_weighted
from services.search.hybrid import bm25_query
from services.search.settings import SearchSettings
from services.splitter.cleaning import clean
from services.splitter.splitting import split


def zscore_weighted(vector_weight: float) -> Fusion:
    """Each ranking's scores standardised (a key absent from a ranking gets its lowest), then
    weighted as vector_weighted does: a ranking's outliers, not its range, set its scale."""

    def fuse(rankings: list[Ranking]) -> list[tuple[str, float]]:
        weights = [1.0 - vector_weight] + [vector_weight / max(len(rankings) - 1, 1)] * (len(rankings) - 1)
        standardised = []
        for ranking in rankings:
            scores = np.array([score for _, score in ranking]) if ranking else np.zeros(1)
            mean, std = scores.mean(), scores.std() or 1.0
            standardised.append({key: (score - mean) / std for key, score in ranking})
        keys = {key for ranking in standardised for key in ranking}
        floors = [min(z.values(), default=0.0) for z in standardised]
        fused = {key: sum(w * z.get(key, floor) for w, z, floor in zip(weights, standardised, floors)) for key in keys}
        return sorted(fused.items(), key=lambda item: item[1], reverse=True)

    return fuse


FUSIONS: dict[str, Fusion] = {
    "rrf": rrf,
    **{f"minmax w={w}": vector_weighted(w) for w in (0.5, 0.6, 0.7)},
    **{f"zscore w={w}": zscore_weighted(w) for w in (0.5, 0.6, 0.7)},
}
DEPTH = 200  # chunks each ranking contributes, as the gateway asks for top_k=50 at depth 4x


@dataclass
class Chunk:
    document: str
    title: str | None
    text: str


def chunk_testbed(bed: Testbed, rule: ProcessRule, automatic_tokens: int) -> list[Chunk]:
    return [
        Chunk(name, title_of(text), piece.text)
        for name, text in bed.documents.items()
        for piece in split(clean(text, rule), rule, automatic_tokens)
    ]


class VectorCache:
    """Vectors by (model, text), on disk: each text is embedded once across runs."""

    def __init__(self, path: Path):
        self.path = path
        self.vectors: dict[str, np.ndarray] = pickle.loads(path.read_bytes()) if path.exists() else {}

    def embed(self, model: EmbeddingProvider, texts: list[str]) -> np.ndarray:
        keys = [hashlib.sha256(f"{model.name}|{t}".encode()).hexdigest() for t in texts]
        missing = [(k, t) for k, t in zip(keys, texts) if k not in self.vectors]
        for i in range(0, len(missing), 32):
            batch = missing[i : i + 32]
            for (key, _), vector in zip(batch, model.embed_documents([t for _, t in batch])):
                self.vectors[key] = np.asarray(vector, dtype=np.float32)
        if missing:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_bytes(pickle.dumps(self.vectors))
        return np.stack([self.vectors[k] for k in keys])


def index_testbed(es: Elasticsearch, name: str, chunks: list[Chunk]) -> None:
    if es.indices.exists(index=name):
        es.indices.delete(index=name)
    es.indices.create(index=name, mappings=mapping(None), settings={"number_of_shards": 1})
    helpers.bulk(es, (
        {"_index": name, "_id": str(i), "_source": {"content": c.text, "title": c.title, "document_id": c.document}}
        for i, c in enumerate(chunks)
    ), refresh=True)


# BM25 variants: the query against the chunk index.
BM25_QUERIES: dict[str, Callable[[str], dict]] = {
    # Measured before (500-token chunks, best chunk): standard analyzer 0.627, english + standard
    # 0.645 (200-token chunks), title^1 0.653, title^2 0.641.
    "english": lambda q: {"match": {"content.english": q}},
    "pipeline": bm25_query,  # english + title^0.5
}


Ranking = list[tuple[str, float]]  # (chunk number, score), best first


def bm25_ranking(es: Elasticsearch, index: str, query: dict) -> Ranking:
    hits = es.search(index=index, query=query, size=DEPTH, _source=False)["hits"]["hits"]
    return [(h["_id"], h["_score"]) for h in hits]


def knn_ranking(vectors: np.ndarray, query: np.ndarray) -> Ranking:
    sims = vectors @ query / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query) + 1e-9)
    order = np.argsort(-sims)[:DEPTH]
    return [(str(i), float((1 + sims[i]) / 2)) for i in order]  # Elasticsearch's cosine score


def best_chunk_per_document(ranking: Ranking, chunks: list[Chunk]) -> Ranking:
    best: dict[str, float] = {}
    for key, score in ranking:
        best.setdefault(chunks[int(key)].document, score)
    return list(best.items())


def corroborated_per_document(weight: float) -> Callable[[Ranking, list[Chunk]], Ranking]:
    """Documents by their best chunk raised by ``weight`` times their next best (the gateway's
    ranking of one mode, services/search/fusion.py)."""

    def aggregate(ranking: Ranking, chunks: list[Chunk]) -> Ranking:
        document_of = {key: chunks[int(key)].document for key, _ in ranking}
        return best_chunk_per_document(ranked_by_documents([ranking], document_of, rrf, weight), chunks)

    return aggregate


AGGREGATIONS = {"best": best_chunk_per_document,
                **{f"best+{w}*second": corroborated_per_document(w) for w in (0.1, 0.3)}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--testbeds", type=int, default=None)
    parser.add_argument("--model", default=EmbeddingSettings().default_model)
    parser.add_argument("--max-tokens", type=int, default=None,
                        help="custom rule: paragraphs split at this size (default: automatic, the model's size)")
    parser.add_argument("--overlap", type=int, default=20)
    parser.add_argument("--titled", action="store_true", help="also embed each chunk under its title line")
    args = parser.parse_args()
    settings = Settings()
    search = SearchSettings()
    es = elasticsearch_client(settings, request_timeout=300)
    model = load_provider(args.model, EmbeddingSettings())
    cache = VectorCache(settings.state_dir / "bench-cache" / f"{args.model}.pickle")
    rule = ProcessRule(mode="custom", segmentation=Segmentation(max_tokens=args.max_tokens, chunk_overlap=args.overlap)) \
        if args.max_tokens else ProcessRule()
    beds = load_testbeds(args.testbeds)

    scores: dict[str, list[float]] = {}

    def score(name: str, documents: Ranking, relevance: dict[str, int]) -> None:
        scores.setdefault(name, []).append(ndcg_at_10([d for d, _ in documents], relevance))

    for bed in beds:
        chunks = chunk_testbed(bed, rule, model.automatic_chunk_tokens)
        index = f"lab-{bed.name}"
        index_testbed(es, index, chunks)
        variants = {"plain": cache.embed(model, [c.text for c in chunks])}
        if args.titled:
            variants["titled"] = cache.embed(model, [f"{c.title}\n{c.text}" if c.title else c.text for c in chunks])
        for query in bed.queries:
            vector = np.asarray(model.embed_query(query.text), dtype=np.float32)
            semantic = {name: knn_ranking(vectors, vector) for name, vectors in variants.items()}
            lexical = {name: bm25_ranking(es, index, q(query.text)) for name, q in BM25_QUERIES.items()}
            for aggregation, aggregate in AGGREGATIONS.items():
                documents = {f"bm25 {name}": aggregate(r, chunks) for name, r in lexical.items()}
                documents |= {f"semantic {name}": aggregate(r, chunks) for name, r in semantic.items()}
                for name, ranking in documents.items():
                    score(f"{name} [{aggregation}]", ranking, query.relevance)
                for fusion_name, fuse in FUSIONS.items():
                    for sem in variants:
                        # Fused per chunk then aggregated, or aggregated per document then fused.
                        pair = [lexical["pipeline"], semantic[sem]]
                        score(f"hybrid {fusion_name} chunks ({sem}) [{aggregation}]", aggregate(fuse(pair), chunks), query.relevance)
                        pair = [documents["bm25 pipeline"], documents[f"semantic {sem}"]]
                        score(f"hybrid {fusion_name} documents ({sem}) [{aggregation}]", fuse(pair), query.relevance)
            # As the gateway ranks, the documents of the top 50 chunks (bench.retrieval_quality's top_k).
            document_of = {str(i): c.document for i, c in enumerate(chunks)}
            for fusion_name, fuse in FUSIONS.items():
                for sem in variants:
                    fused = ranked_by_documents([lexical["pipeline"], semantic[sem]], document_of, fuse,
                                                search.corroboration)
                    score(f"hybrid {fusion_name} as the gateway ({sem})", best_chunk_per_document(fused[:50], chunks),
                          query.relevance)
                    # Query feedback as the gateway asks it (services/search/feedback.py).
                    top = [variants[sem][int(key)] for key, _ in fused[: search.feedback_chunks]]
                    refined = np.asarray(refined_query(vector, top, search.feedback_weight), dtype=np.float32)
                    refused = ranked_by_documents([lexical["pipeline"], knn_ranking(variants[sem], refined)],
                                                  document_of, fuse, search.corroboration)
                    score(f"hybrid {fusion_name} as the gateway, query feedback ({sem})",
                          best_chunk_per_document(refused[:50], chunks), query.relevance)
        es.indices.delete(index=index)
        print(f"{bed.name}: {len(chunks)} chunks", flush=True)

    print(f"\n{len(next(iter(scores.values())))} queries, model {args.model}, "
          f"chunks of {args.max_tokens or model.automatic_chunk_tokens} tokens ({rule.mode})")
    print(f"{'ranking':72} {'nDCG@10':>8}")
    for name, values in scores.items():
        print(f"{name:72} {np.mean(values):>8.4f}")


if __name__ == "__main__":
    main()
