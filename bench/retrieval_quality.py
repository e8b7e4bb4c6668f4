"""Retrieval quality end to end: index the judged testbeds through the running pipeline (one
dataset per testbed, through the gateway API), run every query, and print nDCG@10 of BM25,
semantic and hybrid search side by side, with the ingest throughput.

    .venv/bin/indexflow up
    .venv/bin/python -m bench.retrieval_quality [--testbeds N]
"""

from __future__ import annotations

import argparse
import time
import uuid

import httpx
import numpy as np

from bench.testbeds import load_testbeds, ndcg_at_10
from schemas import TERMINAL_STATUSES
from services.runtime.elasticsearch_client import elasticsearch_client
from services.runtime.settings import Settings

MODES = ("bm25", "semantic", "hybrid")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--testbeds", type=int, default=None, help="use only the first N testbeds")
    parser.add_argument("--tenant", default=f"bench-{uuid.uuid4().hex[:8]}")
    parser.add_argument("--queries-only", action="store_true", help="the tenant's testbeds are indexed already")
    args = parser.parse_args()
    settings = Settings()
    print(f"engine: {engine_label(settings)}")
    http = httpx.Client(base_url=settings.gateway_url, headers={"X-Tenant-Id": args.tenant}, timeout=300)
    beds = load_testbeds(args.testbeds)
    if not args.queries_only:
        ingest(http, beds)
    evaluate(http, beds)


def engine_label(settings: Settings) -> str:
    """Which server the figures come from: the embedded stand-in and Elasticsearch rank differently."""
    info = elasticsearch_client(settings).info()
    return f"{info['name']} (Elasticsearch API {info['version']['number']}), float HNSW vectors, BM25 with DFS"


def ingest(http: httpx.Client, beds: list) -> None:
    started = time.monotonic()
    batches = {}
    for bed in beds:
        batch = uuid.uuid4().hex
        for name, text in bed.documents.items():
            http.post(
                f"/v1/datasets/{bed.name}/document/create-by-text",
                json={"name": name, "text": text},
                headers={"X-Batch-Id": batch},
            ).raise_for_status()
        batches[bed.name] = batch
    documents = sum(len(b.documents) for b in beds)
    segments = 0
    for bed in beds:
        while True:
            states = http.get(f"/v1/datasets/{bed.name}/documents/{batches[bed.name]}/indexing-status").json()["data"]
            if all(s["status"] in TERMINAL_STATUSES for s in states):
                segments += sum(s.get("segment_count") or 0 for s in states)
                break
            time.sleep(1)
    seconds = time.monotonic() - started
    print(f"indexed {documents} documents, {segments} segments in {seconds:.0f}s "
          f"({documents / seconds:.1f} documents/s, {segments / seconds:.1f} segments/s)")


def evaluate(http: httpx.Client, beds: list) -> None:
    scores: dict[str, list[float]] = {mode: [] for mode in MODES}
    for bed in beds:
        for query in bed.queries:
            for mode in MODES:
                records = http.post(
                    f"/v1/datasets/{bed.name}/retrieve", json={"query": query.text, "mode": mode, "top_k": 50}
                ).json()["records"]
                ranked = list(dict.fromkeys(r["name"] for r in records))  # best chunk per document
                scores[mode].append(ndcg_at_10(ranked, query.relevance))
    print(f"{len(scores['bm25'])} queries over {len(beds)} testbeds")
    print(f"{'mode':10} {'nDCG@10':>8}")
    for mode in MODES:
        print(f"{mode:10} {np.mean(scores[mode]):>8.4f}")


if __name__ == "__main__":
    main()
