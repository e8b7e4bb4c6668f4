"""How much one tenant's load slows another's requests, on an embedded stack of its own (own state
dir and loopback ports, stopped at the end) behind a gateway requiring API keys.

Tenant B lists its datasets (`GET /v1/datasets`) one request after another, first with the
deployment idle, then while tenant A runs concurrent estimates of a scanned page, heavy metadata
filters (three `in` conditions of 10,000 values each over its documents) and many live event
streams, each kind alone and then all at once. Prints B's latencies in each phase, their p95 ratio
to idle (target: under 2x) and what A's requests got (answered, or refused at its limits).
Tenant A's clients run in a process of their own at a lower CPU priority, standing for another
tenant's machines: in B's process their threads would take the GIL B's timings share, and at the
gateway's priority the load generator's own CPU on these two cores would be what is measured.
Figures, not a pass/fail test.

    .venv/bin/python bench/tenant_isolation.py [--samples 300] [--estimators 12] [--filters 6] [--streams 40]
        [--phases estimates,filters,streams,all]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stacks import own_pipeline  # noqa: E402

SCAN = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "documents" / "img_DA-1p.jpg"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def timed_listings(client: httpx.Client, samples: int) -> tuple[list[float], Counter]:
    seconds, statuses = [], Counter()
    for _ in range(samples):
        started = time.perf_counter()
        response = client.get("/v1/datasets", params={"limit": 20})
        seconds.append(time.perf_counter() - started)
        statuses[response.status_code] += 1
        time.sleep(0.01)  # an interactive caller, not a flood of its own
    return seconds, statuses


class Load:
    """Tenant A's load, each kind in threads of its own, until stopped; counts its answers."""

    def __init__(self, url: str, key: str, dataset: str, estimators: int, filters: int, streams: int):
        self.url, self.headers, self.dataset = url, {"Authorization": f"Bearer {key}"}, dataset
        self.counts: dict[str, Counter] = {"estimate": Counter(), "filter": Counter(), "stream": Counter()}
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.threads = ([threading.Thread(target=self._estimates, daemon=True) for _ in range(estimators)]
                        + [threading.Thread(target=self._filters, daemon=True) for _ in range(filters)]
                        + [threading.Thread(target=self._stream, daemon=True) for _ in range(streams)])

    def _count(self, kind: str, status: int) -> None:
        with self._lock:
            self.counts[kind][status] += 1

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=120)

    def _estimates(self) -> None:
        page = (SCAN.name, SCAN.read_bytes())
        with self._client() as client:
            while not self.stop.is_set():
                response = client.post(f"/v1/datasets/{self.dataset}/document/estimate", files={"file": page})
                self._count("estimate", response.status_code)
                if response.status_code == 429:
                    self.stop.wait(0.2)  # a hostile client comes back at once, almost

    def _filters(self) -> None:
        values = [f"value-{n}" for n in range(10_000)]
        conditions = [{"name": f"field{i}", "comparison_operator": "in", "value": values} for i in range(3)]
        body = orjson.dumps({"query": "harbour tides", "retrieval_model": {
            "search_method": "full_text_search", "reranking_enable": False, "top_k": 5,
            "score_threshold_enabled": False,
            "metadata_filtering_conditions": {"logical_operator": "or", "conditions": conditions}}})
        with self._client() as client:
            while not self.stop.is_set():
                response = client.post(f"/v1/datasets/{self.dataset}/retrieve", content=body,
                                       headers={"Content-Type": "application/json"})
                self._count("filter", response.status_code)
                if response.status_code == 429:
                    self.stop.wait(0.2)

    def _stream(self) -> None:
        with self._client() as client:
            while not self.stop.is_set():
                with client.stream("GET", "/v1/ops/events", timeout=httpx.Timeout(120, read=5)) as response:
                    self._count("stream", response.status_code)
                    if response.status_code != 200:
                        self.stop.wait(1)
                        continue
                    try:
                        for _ in response.iter_bytes():
                            if self.stop.is_set():
                                break
                    except httpx.ReadTimeout:
                        continue

    def run(self, stop: multiprocessing.synchronize.Event, answers: multiprocessing.Queue) -> None:
        for thread in self.threads:
            thread.start()
        stop.wait()
        self.stop.set()
        for thread in self.threads:
            thread.join(30)
        answers.put(self.counts)


def tenant_a(url: str, key: str, dataset: str, kinds: tuple[int, int, int],
             stop: multiprocessing.synchronize.Event, answers: multiprocessing.Queue) -> None:
    os.nice(10)
    Load(url, key, dataset, *kinds).run(stop, answers)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=300, help="B's listings in each phase")
    parser.add_argument("--documents", type=int, default=200, help="A's documents, each with metadata")
    parser.add_argument("--estimators", type=int, default=12, help="A's clients sending estimates at once")
    parser.add_argument("--filters", type=int, default=6, help="A's clients sending filtered searches at once")
    parser.add_argument("--streams", type=int, default=40, help="A's clients keeping event streams open")
    parser.add_argument("--phases", default="estimates,filters,streams,all",
                        help="which of A's loads to run, comma-separated")
    args = parser.parse_args()

    with own_pipeline("isolation", INDEXFLOW_AUTH="api_keys", INDEXFLOW_TOPIC_PREFIX="isolation.",
                      INDEXFLOW_METRICS_PORT="0") as (settings, _):
        from services.gateway.api_keys import ApiKeys  # once the environment names the stack's
        from services.runtime.redis_client import redis_client

        keys = ApiKeys(redis_client(settings), settings.keys)
        a_key, b_key = keys.create("tenant-a")[0], keys.create("tenant-b")[0]
        b = httpx.Client(base_url=settings.gateway_url, headers={"Authorization": f"Bearer {b_key}"}, timeout=120)
        a = httpx.Client(base_url=settings.gateway_url, headers={"Authorization": f"Bearer {a_key}"}, timeout=120)
        for n in range(20):
            assert b.post("/v1/datasets", json={"name": f"b-set-{n}"}).status_code == 200
        written = []
        for n in range(args.documents):
            response = a.post("/v1/datasets/a-docs/document/create-by-text", json={
                "name": f"doc-{n}.txt", "indexing_technique": "economy",
                "text": f"Harbour log {n}. The tides and the pilots' charts, entry {n}.",
                "metadata": {f"field{i}": f"value-{(n * 37 + i) % 20_000}" for i in range(3)}})
            assert response.status_code == 200, response.text
            written.append(response.json()["document_id"])
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            states = a.post("/v1/datasets/a-docs/documents/states", json={"document_ids": written}).json()["data"]
            if sum(s["status"] == "completed" for s in states) == len(written):
                break
            time.sleep(1)

        timed_listings(b, 20)  # warm

        def figures(seconds: list[float]) -> str:
            return (f"p50 {statistics.median(seconds) * 1000:7.1f} ms   p95 {percentile(seconds, 0.95) * 1000:7.1f} ms"
                    f"   max {max(seconds) * 1000:7.1f} ms")

        print(f"tenant B, GET /v1/datasets ({args.samples} each; 20 datasets); tenant A: {args.documents} documents")
        print("each load's phase right after an idle one of its own: the ratio holds against what else the box does")
        processes = multiprocessing.get_context("spawn")
        phases = {
            "estimates": (f"A: {args.estimators} clients estimating", (args.estimators, 0, 0)),
            "filters": (f"A: {args.filters} clients filtering", (0, args.filters, 0)),
            "streams": (f"A: {args.streams} clients streaming", (0, 0, args.streams)),
            "all": ("A: all of these at once", (args.estimators, args.filters, args.streams)),
        }
        for phase, (estimators, filters, streams) in (phases[name] for name in args.phases.split(",")):
            idle, idle_statuses = timed_listings(b, args.samples)
            print(f"  {'idle':34} {figures(idle)}   statuses {dict(idle_statuses)}")
            stop, answers = processes.Event(), processes.Queue()
            load = processes.Process(target=tenant_a, args=(
                settings.gateway_url, a_key, "a-docs", (estimators, filters, streams), stop, answers))
            load.start()
            time.sleep(5)  # every kind of load under way
            loaded, loaded_statuses = timed_listings(b, args.samples)
            stop.set()
            counts = answers.get(timeout=120)
            load.join(30)
            ratio = percentile(loaded, 0.95) / percentile(idle, 0.95)
            print(f"  {phase:34} {figures(loaded)}   statuses {dict(loaded_statuses)}   p95 ratio {ratio:.2f}x")
            got = "; ".join(f"{kind} {dict(sorted(statuses.items()))}" for kind, statuses in counts.items()
                            if statuses)
            print(f"  {'':34} A's answers: {got}")
            time.sleep(5)  # what A left running (abandoned estimates, closing streams) ends
        print("target: B's p95 under 2x its idle value")


if __name__ == "__main__":
    main()
