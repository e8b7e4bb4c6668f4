"""How the read routes' time grows with the documents of one dataset, on an embedded stack of its
own (own state dir and loopback ports, stopped at the end).

The documents' states are written straight into the state store through the projector's own
write (``StateStore.fold``: the state, the dataset's set and its counts), not run through the
pipeline: this measures the reads, not the indexing. At each size it prints the p50 of the
dataset list, one dataset, the first page of its documents (all, by status, by keyword) and the
dashboard's overview, the time of the first listing by keyword there (the gateway reads the names
then), and the state Redis's bytes per document. Figures, not a pass/fail test.

    .venv/bin/python -m bench.read_routes [--sizes 10000,100000] [--samples 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stacks import own_pipeline  # noqa: E402

ROUTES = {
    "GET /v1/datasets": "/v1/datasets",
    "GET /v1/datasets/{id}": "/v1/datasets/{dataset}",
    "GET .../documents (page 1, 20)": "/v1/datasets/{dataset}/documents?page=1&limit=20",
    "... &status=available": "/v1/datasets/{dataset}/documents?page=1&limit=20&status=available",
    "... &keyword=ticket-7": "/v1/datasets/{dataset}/documents?page=1&limit=20&keyword=ticket-7",
    "GET /v1/ops/overview": "/v1/ops/overview",
}


def p50_ms(http: httpx.Client, path: str, samples: int, spacing: float = 0.0) -> float:
    return statistics.median(timed_ms(http, path, samples, spacing))


def timed_ms(http: httpx.Client, path: str, samples: int, spacing: float = 0.0) -> list[float]:
    seconds = []
    for _ in range(samples):
        time.sleep(spacing)
        started = time.perf_counter()
        response = http.get(path)
        seconds.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text[:300]
    return [s * 1000 for s in seconds]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000", help="documents in the dataset, ascending")
    parser.add_argument("--samples", type=int, default=20, help="requests per route and size")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    with own_pipeline("reads", INDEXFLOW_TOPIC_PREFIX="reads.", INDEXFLOW_METRICS_PORT="0") as (settings, _):
        from schemas import DocumentStatus, Stage, StatusEvent  # once the environment names the stack's
        from services.gateway.routes.dashboard import OVERVIEW_EVERY_SECONDS
        from services.projector.store import StateStore
        from services.runtime.redis_client import redis_client

        http = httpx.Client(base_url=settings.gateway_url, headers={"X-Tenant-Id": "reader"}, timeout=300)
        for n in range(9):
            assert http.post("/v1/datasets", json={"name": f"small-{n}"}).status_code == 200
        dataset = http.post("/v1/datasets", json={"name": "large"}).json()["id"]
        client = redis_client(settings)
        store = StateStore(client, settings.keys)
        print(f"one dataset of N documents (each a completed state of 60 words) among 10 of tenant 'reader'; "
              f"p50 of {args.samples} requests")
        print(f"{'N':>8}  " + "  ".join(f"{name:>30}" for name in ROUTES)
              + f"  {'keyword, first':>22}  {'state Redis bytes/doc':>22}")
        print("  (a keyword's first listing reads the dataset's names; later ones what changed since)")
        written, memory_before = 0, client.info("memory")["used_memory"]
        for size in sizes:
            started = time.monotonic()
            while written < size:
                store.fold(StatusEvent(tenant_id="reader", dataset_id=dataset, document_id=f"doc-{written}",
                                       revision=1, attempt=1, status=DocumentStatus.COMPLETED, stage=Stage.INDEXER,
                                       name=f"ticket-{written}.txt", segment_count=1, word_count=60, progress=1.0),
                           written)
                written += 1
            print(f"  ({size:,} states written in {time.monotonic() - started:.0f} s)", file=sys.stderr)
            figures, first = [], 0.0
            for name, path in ROUTES.items():
                spacing = OVERVIEW_EVERY_SECONDS + 0.1 if "overview" in name else 0.0  # past its cache each time
                samples = min(args.samples, 5) if spacing else args.samples
                times = timed_ms(http, path.format(dataset=dataset), samples, spacing)
                figures.append(statistics.median(times))
                first = times[0] if "keyword" in name else first
            per_document = (client.info("memory")["used_memory"] - memory_before) / written
            print(f"{size:>8,}  " + "  ".join(f"{ms:>27.1f} ms" for ms in figures)
                  + f"  {first:>19.1f} ms  {per_document:>22,.0f}")


if __name__ == "__main__":
    main()
