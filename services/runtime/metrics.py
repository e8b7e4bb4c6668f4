"""Every Prometheus metric indexflow exports, in one place (names, labels, buckets), and the
``/metrics`` endpoint of a service process.

Consumer-loop services serve ``/metrics`` on ``INDEXFLOW_METRICS_HOST:INDEXFLOW_METRICS_PORT``
(the supervisor of the embedded stack gives each its own port); the gateway serves it on its HTTP
port. Names follow Prometheus' conventions: counters end in ``_total``, times are in seconds."""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram, Summary, start_http_server

from services.runtime.settings import Settings

log = logging.getLogger(__name__)

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_LATENCY = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
_SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)

# -- every consumer-loop stage (services/runtime/loop.py) -----------------------------------
RECORDS = Counter(
    "indexflow_records_total",
    "Records a stage handled, by outcome: handled, or dead_lettered (a batch redone after an outage counts again)",
    ["stage", "lane", "outcome"],
)
RETRIES = Counter("indexflow_retries_total", "Attempts at a record that failed and were tried again", ["stage"])
DEAD_LETTER_WRITES = Counter(
    "indexflow_dead_letters_total",
    "Records written to the DLQ, by why: malformed, permanent (bad input), failed (retries exhausted, rejected)",
    ["stage", "reason"],
)
OUTAGES = Counter(
    "indexflow_outages_total", "Batches interrupted by an unavailable dependency (then retried)", ["stage"],
)
RECORD_SECONDS = Histogram(
    "indexflow_record_seconds", "Time a stage spent handling one record", ["stage"], buckets=_SECONDS,
)
BATCH_SECONDS = Histogram(
    "indexflow_batch_seconds", "Time from a batch's first record handled to its offsets committed",
    ["stage", "lane"], buckets=_SECONDS,
)
BATCH_RECORDS = Histogram("indexflow_batch_records", "Records per batch", ["stage", "lane"], buckets=_SIZES)
STAGE_LATENCY = Histogram(
    "indexflow_stage_latency_seconds",
    "From a record's arrival in its topic (its Kafka timestamp) to the stage committing it",
    ["stage", "lane"], buckets=_LATENCY,
)
CONSUMER_LAG = Gauge(
    "indexflow_consumer_lag",
    "Records of a partition not yet committed by the group: the high watermark of the last fetch "
    "minus the committed offset",
    ["group", "topic", "partition"],
)

# -- every process that talks to a server ---------------------------------------------------
SERVER_WAIT = Summary(
    "indexflow_server_wait_seconds",
    "Time spent waiting on a server's answers, by server: kafka (acknowledgements, commits), redis, "
    "elasticsearch. A consumer waiting for records is idle, not counted",
    ["server"],
)
RECORDS_LOST = Counter(
    "indexflow_records_lost_total",
    "Records a consumer group jumped over: deleted by retention (or a broker) before it read them",
    ["group", "topic"],
)
PRODUCER_REBUILDS = Counter(
    "indexflow_kafka_producer_rebuilds_total",
    "Kafka producers replaced because they stayed stuck after the broker came back",
)

# -- extractor ----------------------------------------------------------------------------
PAGES = Counter("indexflow_extracted_pages_total", "Pages extracted, by how: text or ocr", ["how"])
OCR_SECONDS = Counter("indexflow_ocr_seconds_total", "Seconds spent in OCR")

# -- splitter -----------------------------------------------------------------------------
SEGMENTS_MADE = Counter("indexflow_segments_total", "Segments the splitter made (a batch redone counts again)")

# -- embedder -----------------------------------------------------------------------------
EMBEDDING_CACHE = Counter(
    "indexflow_embedding_cache_total", "Texts looked up in the embedding cache, by result: hit or miss",
    ["model", "result"],
)
EMBEDDING_TEXTS = Counter("indexflow_embedding_texts_total", "Texts embedded by the model", ["model"])
EMBEDDING_CALL_SECONDS = Histogram(
    "indexflow_embedding_call_seconds", "Time of one model call (a batch of texts)", ["model"], buckets=_SECONDS,
)
EMBEDDING_CALL_TEXTS = Histogram(
    "indexflow_embedding_call_texts", "Texts per model call", ["model"], buckets=_SIZES,
)

# -- indexer ------------------------------------------------------------------------------
CHUNKS_INDEXED = Counter("indexflow_chunks_indexed_total", "Chunks written to Elasticsearch")
CHUNKS_DELETED = Counter("indexflow_chunks_deleted_total", "Chunks deleted from Elasticsearch by id")
BULK_SECONDS = Histogram("indexflow_bulk_seconds", "Time of one Elasticsearch bulk request", buckets=_SECONDS)
REFRESH_SECONDS = Histogram("indexflow_refresh_seconds", "Time of one Elasticsearch refresh", buckets=_SECONDS)
DOCUMENTS_COMPLETED = Counter("indexflow_documents_completed_total", "Revisions fully indexed")

# -- projector ----------------------------------------------------------------------------
STATES_FOLDED = Counter("indexflow_states_total", "Document states written by the projector, by status", ["status"])

# -- watchdog -----------------------------------------------------------------------------
REDRIVES = Counter("indexflow_redrives_total", "Documents re-driven, by why: stalled, reconciled", ["reason"])
GIVEN_UP = Counter("indexflow_stalled_given_up_total", "Stalled documents ended in error after their last attempt")
STALE_CHUNKS = Counter("indexflow_stale_chunks_removed_total", "Chunks the reconciler found no document serving")
LIVE_PROCESSES = Gauge(
    "indexflow_live_processes",
    "Processes of a service whose newest heartbeat is recent (0: the service is stopped or hung)", ["service"],
)
DOCUMENTS = Gauge("indexflow_documents",
                  "Live documents by the status of their state (the datasets' counts), at the last stall sweep",
                  ["status"])
DOCUMENTS_STALLED = Gauge(
    "indexflow_documents_stalled",
    "Documents whose state had not moved for the stall time at the last sweep, by verdict: queued (behind a "
    "backlog that moves), redriven, failed (attempts used up)",
    ["verdict"],
)

# -- gateway ------------------------------------------------------------------------------
HTTP_REQUESTS = Counter("indexflow_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
HTTP_SECONDS = Histogram(
    "indexflow_http_request_seconds", "Time to answer an HTTP request", ["method", "route"], buckets=_SECONDS,
)
ESTIMATES = Counter(
    "indexflow_estimates_total",
    "Indexing estimates by outcome: answered, unestimable, abandoned (the client left), timed_out, refused "
    "(the queue or the tenant's limit full)",
    ["outcome"],
)
# The pipeline read from outside its consumer groups (services/gateway/pipeline_view.py), at each scrape.
PIPELINE_LAG = Gauge(
    "indexflow_pipeline_lag",
    "Records of a stage's lane its consumer group has not committed (end offset minus committed offset), read "
    "from outside the group, so a stage that is down still shows its backlog grow",
    ["stage", "lane"],
)
DEAD_LETTER_RECORDS = Gauge("indexflow_dead_letter_records", "Records the DLQ topic holds")
SEARCH_SECONDS = Histogram(
    "indexflow_search_seconds", "Time of one search, by where: elasticsearch, or the gateway's own",
    ["mode", "where"], buckets=_SECONDS,
)


def serve_metrics(settings: Settings) -> int | None:
    """Serve ``/metrics`` of this process on its metrics port; the port, or None when there is none
    (0) or it is taken. A taken port costs the metrics, never the service: it is logged."""
    if not settings.metrics_port:
        return None
    try:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    except OSError as exc:
        log.error("metrics not served: %s:%d: %s", settings.metrics_host, settings.metrics_port, exc)
        return None
    log.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
    return settings.metrics_port
