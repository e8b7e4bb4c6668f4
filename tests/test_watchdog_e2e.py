"""The watchdog and the reconciler against the running pipeline: a record lost on purpose is
re-driven and completes; a document stuck past its attempts ends in error with the reason; chunks
Elasticsearch lost are found and written again; chunks of a revision nobody serves are removed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner

from schemas import DocumentStatus, DocumentUpserted, InlineSource, Stage, document_key
from services.cli.main import cli
from services.indexer.mapping import all_chunk_indices
from services.runtime.elasticsearch_client import elasticsearch_client
from services.runtime.producer import Producer
from services.runtime.settings import Settings
from services.runtime.status import StatusEmitter
from services.watchdog.service import Watchdog, build
from services.watchdog.settings import WatchdogSettings
from tests.support.gateway import Gateway
from tests.test_pipeline_e2e import ALPHA, BETA, chunks
from tests.test_retractions_e2e import wait_for


@pytest.fixture
def gateway(pipeline: Settings, request: pytest.FixtureRequest) -> Gateway:
    return Gateway(pipeline, tenant="watchdog", dataset=request.node.name.replace("_", "-")[:60])


@pytest.fixture
def watchdog(pipeline: Settings) -> Iterator[Watchdog]:
    watchdog = build(pipeline, WatchdogSettings(stall_seconds=1.0, max_attempts=2))
    yield watchdog
    watchdog.close()


def lose_an_upsert(
    pipeline: Settings, watchdog: Watchdog, gateway: Gateway, document_id: str, attempt: int
) -> DocumentUpserted:
    """What the gateway does for an upload, except that the record never reaches the topic."""
    key = document_key("watchdog", document_id)
    upsert = DocumentUpserted(
        tenant_id="watchdog", dataset_id=gateway.dataset, document_id=document_id,
        revision=watchdog.sweep.revisions.next_revision(key), name=f"{document_id}.txt",
        source=InlineSource(text=ALPHA), attempt=attempt,
    )
    watchdog.sweep.registry.remember(upsert)
    producer = Producer(pipeline)
    StatusEmitter(producer, Stage.GATEWAY).emit(upsert, DocumentStatus.WAITING, name=upsert.name, progress=0.0)
    producer.flush()
    wait_for(lambda: (gateway.state(document_id) or {}).get("status") == "waiting", what="waiting state")
    return upsert


def judged(watchdog: Watchdog, key: str, since: datetime, verdict: str):
    """Sweep (the clock a few seconds further each time) until ``key`` gets ``verdict``: a sweep
    may first find it queued behind status events the projector has not committed yet."""
    for step in range(1, 20):
        report = watchdog.sweep.sweep(since + timedelta(seconds=5 * step))
        if key in getattr(report, verdict):
            return report
        assert key in report.queued, report
        time.sleep(0.5)
    raise AssertionError(f"{key} never {verdict}")


def test_a_lost_record_is_redriven_and_completes(pipeline: Settings, watchdog: Watchdog, gateway: Gateway):
    wait_for(watchdog.projector_alive, what="projector heartbeat")
    lost = lose_an_upsert(pipeline, watchdog, gateway, "lost", attempt=1)
    assert "watchdog/lost" not in watchdog.sweep.sweep(lost.produced_at + timedelta(seconds=0.5)).redriven
    judged(watchdog, "watchdog/lost", lost.produced_at, "redriven")
    state = wait_for(lambda: (s := gateway.state("lost")) and s["status"] == "completed" and s, what="completed")
    assert state["attempts"] == 2 and state["segment_count"] > 0


def test_a_document_stuck_past_its_attempts_ends_in_error(pipeline: Settings, watchdog: Watchdog, gateway: Gateway):
    lost = lose_an_upsert(pipeline, watchdog, gateway, "hopeless", attempt=2)
    judged(watchdog, "watchdog/hopeless", lost.produced_at, "failed")
    state = wait_for(lambda: (s := gateway.state("hopeless")) and s["status"] == "error" and s, what="error")
    assert state["error"].startswith("stuck: no progress for") and "after 2 attempt(s)" in state["error"]
    assert "waiting at gateway" in state["error"]


def test_the_reconciler_rewrites_lost_chunks_and_removes_stale_ones(pipeline: Settings, watchdog: Watchdog,
                                                                     gateway: Gateway):
    accepted = gateway.create_text("audited.txt", "\n\n".join([ALPHA, BETA] * 30), document_id="audited")
    state = gateway.wait("audited", accepted["revision"])
    assert state["status"] == "completed"
    es = elasticsearch_client(pipeline)
    indexed = chunks(pipeline, "audited", tenant="watchdog")
    assert len(indexed) >= 3
    # Elasticsearch loses two acknowledged chunks; an old revision's chunk survives somewhere.
    for chunk in indexed[:2]:
        es.delete(index=chunk["_index"], id=chunk["segment_id"])
    stale = {k: v for k, v in indexed[2].items() if k != "_index"} | {"revision": state["revision"] - 5}
    es.index(index=indexed[2]["_index"], id="stale-chunk", document=stale)
    es.indices.refresh(index=all_chunk_indices(pipeline.topic_prefix))

    audit = watchdog.reconciler.run(repair=False)
    [missing] = [m for m in audit.missing if m.document_key == "watchdog/audited"]
    assert (missing.expected - missing.found) == 2
    assert "watchdog/audited" in audit.stale_documents

    result = CliRunner().invoke(cli, ["reconcile", "--json"])
    assert result.exit_code == 1, result.output
    again = wait_for(lambda: (s := gateway.state("audited")) and s["status"] == "completed"
                     and s["revision"] > state["revision"] and s, what="re-driven revision completed")
    es.indices.refresh(index=all_chunk_indices(pipeline.topic_prefix))
    assert len(chunks(pipeline, "audited", tenant="watchdog")) == len(indexed)
    assert all(c["revision"] == again["revision"] for c in chunks(pipeline, "audited", tenant="watchdog"))
    clean = CliRunner().invoke(cli, ["reconcile", "--json", "--dry-run"])
    assert '"missing": []' in clean.output and '"stale_chunks": 0' in clean.output
