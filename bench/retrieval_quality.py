"""Retrieval quality end to end: index the judged testbeds through the running pipeline (one
dataset per testbed, through the gateway API), run every query, and print nDCG@10 of BM25,
semantic and hybrid search side by side (nDCG@10, recall@10, and the gateway's own time per search
apart from the time inside Elasticsearch), with the ingest throughput, for each embedding model
asked for (each its own datasets).

    .venv/bin/indexflow up
    .venv/bin/python -m bench.retrieval_quality [--testbeds N] [--models use-multilingual-v3,all-minilm-l6-v2-int8]
"""

from __future__ import annotations

import argparse
import time
import uuid

import httpx
import numpy as np

from bench.testbeds import load_testbeds, ndcg_at_10, recall_at_10
from schemas import TERMINAL_STATUSES
from services.runtime.elasticsearch_client import elasticsearch_client
from services.runtime.settings import Settings

MODES = ("full_text", "semantic", "hybrid")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--testbeds", type=int, default=None, help="use only the first N testbeds")
    parser.add_argument("--tenant", default=f"bench-{uuid.uuid4().hex[:8]}")
    parser.add_argument("--queries-only", action="store_true", help="the tenant's testbeds are indexed already")
    parser.add_argument("--models", default="", help="comma-separated embedding models (default: the deployment's)")
    args = parser.parse_args()
    settings = Settings()
    print(f"engine: {engine_label(settings)}")
    http = httpx.Client(base_url=settings.gateway_url, headers={"X-Tenant-Id": args.tenant}, timeout=300)
    beds = load_testbeds(args.testbeds)
    for model in [m for m in args.models.split(",") if m] or [None]:
        print(f"\nmodel: {model or 'the deployment default'}")
        if not args.queries_only:
            ingest(http, beds, model)
        evaluate(http, beds, model)


def dataset(bed, model: str | None) -> str:
    return f"{bed.name}-{model}" if model else bed.name


def engine_label(settings: Settings) -> str:
    """Which server the figures come from: the embedded stand-in and Elasticsearch rank differently."""
    info = elasticsearch_client(settings).info()
    return f"{info['name']} (Elasticsearch API {info['version']['number']}), float HNSW vectors, BM25 with DFS"


def ingest(http: httpx.Client, beds: list, model: str | None) -> None:
    started = time.monotonic()
    batches = {}
    for bed in beds:
        batch = uuid.uuid4().hex
        for name, text in bed.documents.items():
            http.post(
                f"/v1/datasets/{dataset(bed, model)}/document/create-by-text",
                json={"name": name, "text": text, "embedding_model": model},
                headers={"X-Batch-Id": batch},
            ).raise_for_status()
        batches[bed.name] = batch
    documents = sum(len(b.documents) for b in beds)
    segments = 0
    for bed in beds:
        while True:
            states = http.get(f"/v1/datasets/{dataset(bed, model)}/documents/{batches[bed.name]}/indexing-status").json()["data"]
            if all(s["status"] in TERMINAL_STATUSES for s in states):
                segments += sum(s.get("segment_count") or 0 for s in states)
                break
            time.sleep(1)
    seconds = time.monotonic() - started
    print(f"indexed {documents} documents, {segments} segments in {seconds:.0f}s "
          f"({documents / seconds:.1f} documents/s, {segments / seconds:.1f} segments/s)")


def evaluate(http: httpx.Client, beds: list, model: str | None) -> None:
    ndcg: dict[str, list[float]] = {mode: [] for mode in MODES}
    recall: dict[str, list[float]] = {mode: [] for mode in MODES}
    own_ms: dict[str, list[float]] = {mode: [] for mode in MODES}  # the gateway's, outside Elasticsearch
    es_ms: dict[str, list[float]] = {mode: [] for mode in MODES}
    for bed in beds:
        for query in bed.queries:
            for mode in MODES:
                answer = http.post(
                    f"/v1/datasets/{dataset(bed, model)}/retrieve", json={"query": query.text, "mode": mode, "top_k": 50}
                ).json()
                ranked = list(dict.fromkeys(r["name"] for r in answer["records"]))  # best chunk per document
                ndcg[mode].append(ndcg_at_10(ranked, query.relevance))
                recall[mode].append(recall_at_10(ranked, query.relevance))
                timings = answer["timings"]
                own_ms[mode].append(timings["total_ms"] - timings["elasticsearch_ms"])
                es_ms[mode].append(timings["elasticsearch_ms"])
    print(f"{len(ndcg[MODES[0]])} queries over {len(beds)} testbeds")
    print(f"{'mode':10} {'nDCG@10':>8} {'recall@10':>10} {'gateway ms p50/p95':>20} {'Elasticsearch ms p50':>21}")
    for mode in MODES:
        own = np.percentile(own_ms[mode], [50, 95])
        print(f"{mode:10} {np.mean(ndcg[mode]):>8.4f} {np.mean(recall[mode]):>10.4f} "
              f"{own[0]:>11.1f} / {own[1]:<7.1f} {np.percentile(es_ms[mode], 50):>21.1f}")


if __name__ == "__main__":
    main()
