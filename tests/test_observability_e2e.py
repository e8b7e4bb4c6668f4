"""What an operator scrapes and reads: /metrics of every service of the running pipeline, and JSON
log lines carrying the tenant, document and revision of the record in hand."""

from __future__ import annotations

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from deploy.supervisor import read_status
from services.runtime.producer import Producer
from services.runtime.settings import Settings
from tests.support.gateway import Gateway
from tests.support.waiting import wait_for
from topics.catalog import DOCUMENTS

STAGES = ("extractor", "splitter", "embedder", "indexer", "projector")


def scrape(url: str) -> dict[str, dict[tuple, float]]:
    """metric sample name -> labels (sorted pairs) -> value."""
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(httpx.get(url, timeout=10).text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def total(samples: dict[str, dict[tuple, float]], name: str, **labels: str) -> float:
    return sum(v for k, v in samples.get(name, {}).items() if set(labels.items()) <= set(k))


def test_every_service_serves_metrics_of_what_it_did(pipeline: Settings):
    gateway = Gateway(pipeline, tenant="metrics", dataset="scraped")
    accepted = gateway.create_text("scraped.txt", "Prometheus scrapes every service of the pipeline. " * 40)
    assert gateway.wait(accepted["document_id"], accepted["revision"])["status"] == "completed"
    again = gateway.create_text("again.txt", "Prometheus scrapes every service of the pipeline. " * 40)
    assert gateway.wait(again["document_id"], again["revision"])["status"] == "completed"
    broken = gateway.http.post(f"/v1/datasets/{gateway.dataset}/document/create-by-file",
                               files={"file": ("broken.pdf", b"%PDF-1.7\n not a PDF at all")}).json()
    assert gateway.wait(broken["document_id"], broken["revision"])["status"] == "error"
    producer = Producer(pipeline)
    producer.send(pipeline.topic(DOCUMENTS.name), b"metrics/garbled", b"{not json")
    producer.flush()

    ports = {name: info["metrics_port"] for name, info in read_status(pipeline.state_dir).items()}
    assert len(set(ports.values())) == len(ports), ports
    scraped = {name: scrape(f"http://127.0.0.1:{port}/metrics") for name, port in ports.items() if name != "gateway"}
    for stage in STAGES:
        samples = scraped[stage]
        assert total(samples, "indexflow_records_total", stage=stage, outcome="handled") > 0, stage
        assert total(samples, "indexflow_stage_latency_seconds_count", stage=stage) > 0, stage
        assert total(samples, "indexflow_record_seconds_count", stage=stage) > 0, stage
        assert total(samples, "indexflow_batch_records_count", stage=stage) > 0, stage
        # Lag per partition the stage owns, from the watermarks its fetches reported.
        assert samples.get("indexflow_consumer_lag"), f"{stage} reports no lag"
        # What the stage waited on: Kafka (acknowledgements, commits) and Redis, every one of them.
        for server in ("kafka", "redis"):
            assert total(samples, "indexflow_server_wait_seconds_count", server=server) > 0, (stage, server)
            assert total(samples, "indexflow_server_wait_seconds_sum", server=server) > 0, (stage, server)
    assert total(scraped["indexer"], "indexflow_server_wait_seconds_count", server="elasticsearch") > 0

    embedder = scraped["embedder"]
    # The second document's text is the first's: its vectors came from the cache.
    assert total(embedder, "indexflow_embedding_cache_total", result="hit") > 0
    assert total(embedder, "indexflow_embedding_cache_total", result="miss") > 0
    assert total(embedder, "indexflow_embedding_texts_total") > 0
    assert total(scraped["indexer"], "indexflow_chunks_indexed_total") > 0
    assert total(scraped["splitter"], "indexflow_segments_total") > 0
    assert total(scraped["extractor"], "indexflow_extracted_pages_total", how="text") > 0
    assert total(scraped["projector"], "indexflow_states_total", status="completed") > 0
    assert "indexflow_redrives_total" in scraped["watchdog"]  # its first sweep ran, with nothing to re-drive

    # The corrupt PDF and the garbled record: each a DLQ write, counted by why.
    wait_for(lambda: total(scrape(f"http://127.0.0.1:{ports['extractor']}/metrics"), "indexflow_dead_letters_total",
                           stage="extractor", reason="malformed") >= 1, "the garbled record is counted")
    assert total(scraped["extractor"], "indexflow_dead_letters_total", stage="extractor", reason="permanent") >= 1

    front = scrape(f"{pipeline.gateway_url}/metrics")
    route = "/v1/datasets/{dataset_id}/document/create-by-text"
    assert total(front, "indexflow_http_requests_total", route=route, method="POST", status="200") >= 2
    assert total(front, "indexflow_http_request_seconds_count", route=route) >= 2
    assert total(front, "indexflow_server_wait_seconds_count", server="kafka") >= 2  # each write acknowledged
    gateway.search("which service does Prometheus scrape")
    front = scrape(f"{pipeline.gateway_url}/metrics")
    assert total(front, "indexflow_search_seconds_count", mode="hybrid", where="gateway") >= 1
    assert total(front, "indexflow_search_seconds_count", mode="hybrid", where="elasticsearch") >= 1


def test_log_lines_are_json_with_the_record_in_hand(pipeline: Settings):
    gateway = Gateway(pipeline, tenant="logged", dataset="lines")
    broken = gateway.http.post(f"/v1/datasets/{gateway.dataset}/document/create-by-file",
                               files={"file": ("broken.pdf", b"%PDF-1.7\n not a PDF either")}).json()
    assert gateway.wait(broken["document_id"], broken["revision"])["status"] == "error"

    log_file = pipeline.state_dir.resolve() / "logs" / "extractor.log"

    def the_dead_letter_line() -> dict | None:
        for line in log_file.read_bytes().splitlines():
            if line.startswith(b"{") and broken["document_id"].encode() in line:
                entry = orjson.loads(line)
                if entry["message"].startswith("dead-lettered"):
                    return entry
        return None

    entry = wait_for(the_dead_letter_line, "the extractor logs the dead letter as JSON")
    assert entry["service"] == "extractor" and entry["level"] == "WARNING"
    assert (entry["tenant"], entry["document"], entry["revision"]) == ("logged", broken["document_id"],
                                                                        broken["revision"])
    assert "timestamp" in entry and entry["logger"] == "services.runtime.dead_letters"
