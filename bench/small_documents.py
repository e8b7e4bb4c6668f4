"""Small documents at Kafka speed, on an embedded stack of its own (own state dir and loopback
ports, stopped at the end).

N tiny documents (about 60 words: one chunk each, `economy`, so no model call) are published
straight onto the documents topic's bulk lane, as an upstream producer does, into one dataset.
It prints documents per second (published; completed, from the first publish to the last
terminal state), the CPU seconds per document of every service and embedded server over that
run, each stage's work, busy seconds and waits on each server, the indexer's time in
Elasticsearch, the state Redis's bytes per terminal document (by key), and the read routes' p50
on the dataset those documents make.

    .venv/bin/python -m bench.small_documents [--documents 20000] [--samples 20]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.read_routes import ROUTES, p50_ms  # noqa: E402
from bench.stacks import free_port, own_pipeline  # noqa: E402
from services.runtime.keys import RedisKeys  # noqa: E402

TENANT, DATASET = "small", "tickets"
SERVICES_FIRST = ("gateway", "extractor", "splitter", "embedder", "indexer", "projector", "watchdog", "sources")
WORDS = ("printer", "invoice", "refund", "login", "password", "shipment", "delayed", "broken", "screen",
         "account", "locked", "order", "missing", "charge", "twice", "update", "failed", "customer",
         "reports", "cannot", "after", "since", "monday", "again", "please", "urgent", "error", "page")


def ticket(rng: random.Random, n: int) -> str:
    return f"Ticket {n}: " + " ".join(rng.choice(WORDS) for _ in range(58)) + "."


def key_families(client, keys: RedisKeys) -> dict[str, int]:
    """Bytes held by each family of the deployment's keys, every tenant's (a key's name after its
    hash tag, up to its first ":")."""
    families: dict[str, int] = {}
    for key in (key for pattern in keys.patterns for key in client.scan_iter(match=pattern, count=1000)):
        family = key.decode().partition("}")[2].split(":", 1)[0]
        families[family] = families.get(family, 0) + (client.memory_usage(key, samples=0) or 0)
    return families


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=20_000, help="tiny documents published")
    parser.add_argument("--samples", type=int, default=20, help="requests per read route")
    parser.add_argument("--timeout", type=float, default=3_600, help="seconds to wait for the last terminal state")
    args = parser.parse_args()

    # Every service's /metrics, on consecutive ports from a free one, for the stage figures.
    with own_pipeline("small", INDEXFLOW_TOPIC_PREFIX="small.", INDEXFLOW_METRICS_PORT=str(free_port())) as (
            settings, _):
        from bench.throughput import cpu_seconds, print_stage_figures, processes, scrape_services
        from schemas import TERMINAL_STATUSES, DocumentUpserted, IndexingSpec, InlineSource, Priority
        from services.projector.store import StateStore
        from services.runtime.producer import Producer
        from services.runtime.redis_client import redis_client
        from topics.catalog import DOCUMENTS

        http = httpx.Client(base_url=settings.gateway_url, headers={"X-Tenant-Id": TENANT}, timeout=300)
        assert http.post("/v1/datasets", json={"name": DATASET}).status_code == 200
        dataset = http.get("/v1/datasets").json()["data"][0]["id"]
        state = redis_client(settings)
        store = StateStore(state, settings.keys)
        memory_before = state.info("memory")["used_memory"]
        pids = processes(settings)
        cpu_before, stages_before = cpu_seconds(pids), scrape_services(settings)
        rng = random.Random(7)
        indexing = IndexingSpec(indexing_technique="economy")
        producer = Producer(settings)

        started = time.monotonic()
        for n in range(args.documents):
            producer.publish(DOCUMENTS, DocumentUpserted(
                tenant_id=TENANT, dataset_id=dataset, document_id=f"ticket-{n}", revision=1, name=f"ticket-{n}.txt",
                priority=Priority.BULK, indexing=indexing, source=InlineSource(text=ticket(rng, n))))
        producer.flush()
        published = time.monotonic() - started

        terminal = 0
        while terminal < args.documents:
            if time.monotonic() - started > args.timeout:
                sys.exit(f"only {terminal:,} of {args.documents:,} documents terminal after {args.timeout:.0f} s")
            time.sleep(0.5)
            statuses = store.dataset_figures(TENANT, [dataset])[dataset].statuses
            terminal = sum(n for status, n in statuses.items() if status in TERMINAL_STATUSES)
        completed = time.monotonic() - started
        cpu_after, stages_after = cpu_seconds(pids), scrape_services(settings)
        per_document = (state.info("memory")["used_memory"] - memory_before) / args.documents

        print(f"{args.documents:,} tiny documents (about 60 words, one chunk, economy) published on the bulk lane")
        print(f"  published:  {args.documents / published:8.0f} documents/s ({published:.1f} s)")
        print(f"  completed:  {args.documents / completed:8.0f} documents/s (first publish to last terminal, "
              f"{completed:.1f} s): {dict(statuses)}")
        print(f"  state Redis: {per_document:,.0f} bytes per terminal document; by key (bytes per document):")
        for family, size in sorted(key_families(state, settings.keys).items(), key=lambda item: -item[1]):
            if size >= args.documents:  # a byte per document or more
                print(f"    {family:34} {size / args.documents:7.0f}")
        print("  CPU per document (ms), by process:")
        spent = {name: cpu_after.get(name, 0.0) - cpu_before.get(name, 0.0) for name in pids}
        ours = {name: seconds for name, seconds in spent.items() if name.split("-")[0] in SERVICES_FIRST}
        for name, seconds in sorted(spent.items(), key=lambda item: -item[1]):
            print(f"    {name:14} {seconds * 1000 / args.documents:7.2f}")
        print(f"    {'our services':14} {sum(ours.values()) * 1000 / args.documents:7.2f}")
        print_stage_figures(stages_before, stages_after, completed)

        def grew(stage: str, name: str) -> float:
            return stages_after[stage].get(name, 0.0) - stages_before.get(stage, {}).get(name, 0.0)

        if "indexer" in stages_after:
            refreshes = grew("indexer", "indexflow_refresh_seconds_count")
            bulks = grew("indexer", "indexflow_bulk_seconds_count")
            print(f"  indexer in Elasticsearch: {refreshes:,.0f} refreshes took "
                  f"{grew('indexer', 'indexflow_refresh_seconds_sum'):.1f} s, {bulks:,.0f} bulks "
                  f"{grew('indexer', 'indexflow_bulk_seconds_sum'):.1f} s (refreshes are spaced by ten times the "
                  "last one's time, so a slower refresh holds completions back longer)")
        print("  records per batch: " + ", ".join(
            f"{stage} {grew(stage, 'indexflow_batch_records_sum') / batches:.1f}" for stage in stages_after
            if (batches := grew(stage, "indexflow_batch_records_count"))))
        print(f"  read routes on the dataset of {args.documents:,} (p50 of {args.samples}):")
        for name, path in ROUTES.items():
            if "overview" not in name:
                print(f"    {name:34} {p50_ms(http, path.format(dataset=dataset), args.samples):8.1f} ms")


if __name__ == "__main__":
    main()
