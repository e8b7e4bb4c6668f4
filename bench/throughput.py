"""Throughput, freshness and re-ingest, measured side by side in one run on the running stack:

- end to end: generated text files synced through the gateway, publish to `completed`, in chunks/s;
- model limit: the default model alone on the exact chunks the pipeline indexed (read back from
  Elasticsearch), in the very calls the embedder makes and its threads, while the pipeline idles;
  their ratio;
- re-ingest of the unchanged files: wall time against the first ingest, model calls, new revisions;
- one-page documents on the idle pipeline: publish -> `completed` and publish -> first search hit;
- stage figures over the shared corpus and the large ingest: each stage's work (pages, segments,
  texts embedded, chunks indexed) per second of the ingest and per second busy, and the seconds
  it waited on Kafka, Redis and Elasticsearch (from every service's /metrics); CPU seconds of every
  service and embedded server over the large ingest, per chunk;
- peak RSS per service over a small ingest and a 10x one (generated files, after the shared corpus
  warmed every stage up; the peak is reset between them).

    .venv/bin/indexflow up
    .venv/bin/python -m bench.throughput [--files 300] [--one-page 20]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from schemas import TERMINAL_STATUSES
from services.cli.ingest import IngestSummary, collect_files, ingest
from deploy.process import ManagedProcess, proc_stat
from services.cli.pipeline import services_status
from services.embedder.batching import token_budget_batches
from services.embedder.handler import Embedder
from services.embedder.models import EmbeddingSettings, load_provider
from services.indexer.mapping import all_chunk_indices
from services.runtime.elasticsearch_client import elasticsearch_client
from services.runtime.redis_client import redis_client
from services.runtime.search_pages import all_hits
from services.runtime.settings import Settings

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "documents"
SERVERS = ("kafka", "elasticsearch", "redis", "redis-cache")  # the embedded stack's, by pid file


def generated_files(folder: Path, count: int, seed: str, paragraphs: int = 9, vocabulary: list[str] | None = None,
                    ) -> None:
    """``count`` text files of about 80 words per paragraph (700 words by default), unlike any
    earlier run's (so no embedding was cached for them): words of ``vocabulary``, or made-up ones
    (which split into about four times the tokens of English words)."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ren", "tus", "or", "vel", "an", "dri", "po", "sen", "ta", "gu", "lin", "esh"]
    words = vocabulary or list({"".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(4000)})
    folder.mkdir(parents=True)
    for i in range(count):
        text = [" ".join(rng.choice(words) for _ in range(rng.randint(40, 120))) + "." for _ in range(paragraphs)]
        (folder / f"generated-{i:05d}.txt").write_text("\n\n".join(text))


def processes(settings: Settings) -> dict[str, int]:
    """The pid of every service and embedded server running."""
    pids = {name: info["pid"] for name, info in services_status(settings).items() if info.get("pid")}
    for name in SERVERS:
        pid = ManagedProcess(name, settings.state_dir / "run", settings.state_dir / "logs").pid()
        if pid is not None:
            pids[name] = pid
    return pids


def peak_rss_mb(pids: dict[str, int]) -> dict[str, float]:
    """Each process's peak resident memory since its peak was last reset (VmHWM), in MB."""
    peaks = {}
    for name, pid in pids.items():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
        peaks[name] = round(kb / 1024, 1)
    return peaks


def reset_peak_rss(pids: dict[str, int]) -> None:
    for pid in pids.values():
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # 5: reset the peak RSS to the current RSS
        except OSError:
            pass


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """Each process's CPU time so far (user + system), in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for name, pid in pids.items():
        fields = proc_stat(pid)
        if fields is not None:
            used[name] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return used


# What each service's work is counted in (a metric of its /metrics), for the stage figures.
STAGE_WORK = {
    "extractor": ("pages", "indexflow_extracted_pages_total"),
    "splitter": ("segments", "indexflow_segments_total"),
    "embedder": ("texts embedded", "indexflow_embedding_texts_total"),
    "indexer": ("chunks indexed", "indexflow_chunks_indexed_total"),
    "projector": ("states", "indexflow_states_total"),
    "gateway": ("requests", "indexflow_http_requests_total"),
}
WAITED_ON = ("kafka", "redis", "elasticsearch")


def scrape_services(settings: Settings) -> dict[str, dict[str, float]]:
    """service -> metric sample name (with its server label for waits) -> value summed over labels."""
    urls = {name: f"http://127.0.0.1:{info['metrics_port']}/metrics"
            for name, info in services_status(settings).items() if info.get("metrics_port")}
    urls["gateway"] = f"{settings.gateway_url}/metrics"
    scraped = {}
    for name, url in urls.items():
        totals: dict[str, float] = {}
        for family in text_string_to_metric_families(httpx.get(url, timeout=10).text):
            for sample in family.samples:
                key = f"{sample.name}/{sample.labels['server']}" if "server" in sample.labels else sample.name
                totals[key] = totals.get(key, 0.0) + sample.value
        scraped[name] = totals
    return scraped


def print_stage_figures(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]], seconds: float,
                        ) -> None:
    """Each stage's work over an ingest: per second of the ingest, per second the stage was busy
    (handling batches; answering requests, for the gateway), and the seconds it waited on each server."""
    print(f"{'stage':10} {'work':>24} {'per s':>8} {'busy s':>7} {'per busy s':>10}   "
          + " ".join(f"{'on ' + server:>9}" for server in WAITED_ON) + "  (seconds waited)")
    for stage, (unit, metric) in STAGE_WORK.items():
        if stage not in after:
            continue

        def grew(name: str) -> float:
            return after[stage].get(name, 0.0) - before.get(stage, {}).get(name, 0.0)

        done = grew(metric)
        busy = grew("indexflow_http_request_seconds_sum" if stage == "gateway" else "indexflow_batch_seconds_sum")
        waits = " ".join(f"{grew(f'indexflow_server_wait_seconds_sum/{server}'):>9.2f}" for server in WAITED_ON)
        print(f"{stage:10} {f'{done:,.0f} {unit}':>24} {done / seconds:>8.1f} {busy:>7.1f} "
              f"{done / busy if busy else 0:>10.1f}   {waits}")


def embedding_calls(settings: Settings) -> int:
    return sum(int(v) for v in redis_client(settings).hgetall(settings.keys.embedding_calls).values())


def run_ingest(settings: Settings, folder: Path, dataset: str, tenant: str) -> IngestSummary:
    summary = ingest(settings, collect_files([folder]), dataset, tenant)
    print(f"  {dataset}: {summary.documents} files, {summary.created} new, {summary.unchanged} unchanged, "
          f"{summary.completed} completed, {summary.error} error, {summary.segments} segments, {summary.seconds} s",
          flush=True)
    return summary


def model_limit(settings: Settings, dataset: str, tenant: str) -> tuple[int, float, float]:
    """(chunks, seconds, CPU seconds) for the default model alone on the dataset's indexed chunks,
    in the calls the embedder makes of them (see ``embedder_calls``)."""
    es = elasticsearch_client(settings, request_timeout=300)
    query = {"bool": {"filter": [{"term": {"tenant_id": tenant}}, {"term": {"dataset_id": dataset}}],
                      "must_not": [{"term": {"kind": "parent"}}]}}
    hits = all_hits(es, all_chunk_indices(settings.topic_prefix), query, ["_shard_doc"],
                    ["content", "tokens", "name", "position"])
    chunks = sorted((h["_source"] for h in hits), key=lambda c: (c["name"], c["position"]))  # as ingested
    documents: dict[str, list[int]] = {}
    for i, chunk in enumerate(chunks):
        documents.setdefault(chunk["name"], []).append(i)
    tokens = [c.get("tokens") or 0 for c in chunks]
    config = EmbeddingSettings()
    model = load_provider(config.default_model, config)
    model.embed_documents([chunks[0]["content"]])  # loaded and warm, as the embedder is
    started, cpu = time.perf_counter(), time.process_time()
    for call in embedder_calls(list(documents.values()), tokens, model.max_batch_tokens, model.max_batch_texts):
        model.embed_documents([chunks[i]["content"] for i in call])
    return len(chunks), time.perf_counter() - started, time.process_time() - cpu


def embedder_calls(documents: list[list[int]], tokens: list[int], max_tokens: int, max_texts: int,
                   ) -> Iterator[list[int]]:
    """The model calls the embedder makes of these documents' chunks (one record each) when they
    wait in its input: batches of ``Embedder.batch_size`` records, whose first records' texts up
    to ``Embedder.prepare_tokens`` are embedded together and each later record's alone; each lot
    sorted by length, then cut by the model's token and text budgets."""
    def calls(lot: list[int]) -> Iterator[list[int]]:
        ordered = sorted(lot, key=lambda i: tokens[i])
        for positions in token_budget_batches([tokens[i] for i in ordered], max_tokens, max_texts):
            yield [ordered[p] for p in positions]

    for start in range(0, len(documents), Embedder.batch_size):
        batch = documents[start:start + Embedder.batch_size]
        prepared: list[int] = []
        taken = 0
        for document in batch:
            if sum(tokens[i] for i in prepared) >= Embedder.prepare_tokens:
                break
            prepared += document
            taken += 1
        yield from calls(prepared)
        for document in batch[taken:]:
            yield from calls(document)


def one_page_latencies(settings: Settings, tenant: str, count: int) -> tuple[list[float], list[float]]:
    """Seconds from publishing a one-page document to `completed`, and to its first search hit."""
    http = httpx.Client(base_url=settings.gateway_url, headers={"X-Tenant-Id": tenant}, timeout=60)
    completed, searchable = [], []
    for i in range(count):
        marker = f"zq{uuid.uuid4().hex[:10]}"
        text = f"Page {i} about the {marker} survey. " + "The survey counted seabirds on the cliffs. " * 40
        started = time.monotonic()
        accepted = http.post("/v1/datasets/one-page/document/create-by-text", json={"name": f"{marker}.txt", "text": text}).json()
        while True:  # the state first (Redis, cheap), then search (a scan of the index on the embedded server)
            state = http.get(f"/v1/datasets/one-page/documents/{accepted['document_id']}")
            if state.status_code == 200 and state.json()["status"] in TERMINAL_STATUSES:
                completed.append(time.monotonic() - started)
                break
            _give_up_after(started, accepted["document_id"])
        while not http.post("/v1/datasets/one-page/retrieve",
                            json={"query": marker, "mode": "full_text", "top_k": 1}).json()["records"]:
            _give_up_after(started, accepted["document_id"])
        searchable.append(time.monotonic() - started)
        time.sleep(0.5)
    return completed, searchable


def _give_up_after(started: float, document_id: str, seconds: float = 120) -> None:
    if time.monotonic() - started > seconds:
        raise RuntimeError(f"one-page document {document_id} not searchable after {seconds} s")
    time.sleep(0.01)


def percentiles(values: list[float]) -> str:
    return f"p50 {statistics.median(values):.2f} s, p95 {float(np.percentile(values, 95)):.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=300, help="generated text files of the large ingest")
    parser.add_argument("--one-page", type=int, default=20, help="one-page documents timed on the idle pipeline")
    args = parser.parse_args()
    settings = Settings()
    run = uuid.uuid4().hex[:8]
    tenant = f"bench-{run}"
    with tempfile.TemporaryDirectory() as scratch:
        small_folder, folder = Path(scratch) / "small", Path(scratch) / "generated"
        generated_files(small_folder, max(args.files // 10, 1), f"{run}-small")
        generated_files(folder, args.files, run)
        print(f"run {run}, tenant {tenant}", flush=True)
        corpus_stages = None
        if CORPUS.is_dir():  # every stage warm, every format seen
            scraped = scrape_services(settings)
            corpus = run_ingest(settings, CORPUS, "corpus", tenant)
            corpus_stages = (scraped, scrape_services(settings), corpus.seconds)
        pids = processes(settings)
        reset_peak_rss(pids)
        run_ingest(settings, small_folder, "small", tenant)
        small_rss = peak_rss_mb(pids)
        reset_peak_rss(pids)
        calls, cpu_before, scraped = embedding_calls(settings), cpu_seconds(pids), scrape_services(settings)
        large = run_ingest(settings, folder, "large", tenant)
        cpu_used = {name: seconds - cpu_before.get(name, 0.0) for name, seconds in cpu_seconds(pids).items()}
        large_stages = (scraped, scrape_services(settings), large.seconds)
        large_rss = peak_rss_mb(pids)
        model_calls = embedding_calls(settings) - calls
        again = run_ingest(settings, folder, "large", tenant)
        reingest_calls = embedding_calls(settings) - calls - model_calls
        new_revisions = sum(
            after["revision"] != before["revision"]
            for before, after in zip(sorted(large.states, key=lambda s: s["document_id"]),
                                     sorted(again.states, key=lambda s: s["document_id"]))
        )
    chunks, model_seconds, model_cpu = model_limit(settings, "large", tenant)
    completed, searchable = one_page_latencies(settings, tenant, args.one_page)

    end_to_end = large.segments / large.seconds
    limit = chunks / model_seconds
    print(f"\nlarge ingest: {large.documents} files, {large.segments} chunks, {model_calls} texts embedded")
    print(f"{'figure':44} {'value':>24}")
    rows = [
        ("end to end, publish -> completed", f"{end_to_end:.1f} chunks/s"),
        ("model limit, same chunks and batching", f"{limit:.1f} chunks/s"),
        ("end to end / model limit", f"{end_to_end / limit:.2f}"),
        ("unchanged re-ingest, wall time", f"{again.seconds:.2f} s"),
        ("first ingest / unchanged re-ingest", f"{large.seconds / again.seconds:.0f}x"),
        ("re-ingest: model calls, new revisions", f"{reingest_calls}, {new_revisions}"),
        ("one page, publish -> completed", percentiles(completed)),
        ("one page, publish -> first search hit", percentiles(searchable)),
    ]
    for name, value in rows:
        print(f"{name:44} {value:>24}")
    cores = os.cpu_count() or 1
    print(f"\nCPU over the large ingest ({large.seconds:.0f} s x {cores} cores; the model alone: "
          f"{model_cpu / chunks * 1000:.1f} ms per chunk)")
    print(f"{'process':14} {'CPU s':>8} {'share':>7} {'ms/chunk':>9}")
    for name, seconds in sorted(cpu_used.items(), key=lambda item: item[1], reverse=True):
        print(f"{name:14} {seconds:>8.1f} {seconds / (large.seconds * cores):>7.1%} "
              f"{seconds / max(large.segments, 1) * 1000:>9.1f}")
    for name, stages in (("the large ingest", large_stages), ("the shared corpus", corpus_stages)):
        if stages is not None:
            print(f"\nStages over {name} ({stages[2]:.0f} s)")
            print_stage_figures(*stages)
    print(f"\n{'peak RSS (MB)':14} {'small ingest':>14} {'large ingest':>14} {'ratio':>7}")
    for service in sorted(large_rss):
        before, after = small_rss.get(service), large_rss[service]
        print(f"{service:14} {before or 0:>14.1f} {after:>14.1f} {after / before if before else 0:>7.2f}")


if __name__ == "__main__":
    main()
