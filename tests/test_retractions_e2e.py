"""Search serves the newest complete revision of a document and nothing else, in every order:
delete right after upload, a Java-partitioned producer with two indexer replicas, cancel while
indexing, an update that fails. Chunks are removed by id, whatever Elasticsearch has refreshed."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from confluent_kafka import Producer as RawProducer

from schemas import DOCUMENT_EVENTS, DocumentDeleted, DocumentUpserted, InlineSource
from services.runtime.settings import Settings
from tests.support.gateway import Gateway
from tests.support.waiting import wait_for
from tests.test_pipeline_e2e import ALPHA, BETA, chunks
from topics.catalog import DOCUMENTS

LONG = "\n\n".join(f"Paragraph {i} about tidal energy, turbines and estuaries number {i}." * 8 for i in range(400))


@pytest.fixture
def gateway(pipeline: Settings, request: pytest.FixtureRequest) -> Gateway:
    return Gateway(pipeline, tenant="default", dataset=request.node.name.replace("_", "-")[:60])


def test_delete_right_after_upload_leaves_nothing_searchable(pipeline: Settings, gateway: Gateway):
    accepted = gateway.create_text("brief.txt", ALPHA)
    deleted = gateway.delete(accepted["document_id"])  # before anything was indexed or refreshed
    state = gateway.wait(accepted["document_id"], deleted["revision"])
    assert state["status"] == "deleted"
    time.sleep(2)  # any straggler write would be refreshed by now
    assert chunks(pipeline, accepted["document_id"]) == []
    assert not [h for h in gateway.search("aurora borealis", mode="bm25") if h["document_id"] == accepted["document_id"]]


def test_a_java_partitioned_producer_and_two_indexers_never_leave_stale_chunks(pipeline: Settings, gateway: Gateway):
    # A second indexer replica shares the work; the upstream producer uses Java's murmur2.
    replica = subprocess.Popen([sys.executable, "-m", "services.indexer"], env=dict(os.environ),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        producer = RawProducer({"bootstrap.servers": pipeline.kafka_bootstrap_servers, "partitioner": "murmur2_random"})
        topic = pipeline.topic(DOCUMENTS.name)
        ids = [f"java-{i}" for i in range(6)]
        base = int(time.time() * 1000)
        for document_id in ids:
            upsert = DocumentUpserted(tenant_id="default", dataset_id=gateway.dataset, document_id=document_id,
                                      revision=base, name=f"{document_id}.txt", source=InlineSource(text=ALPHA))
            delete = DocumentDeleted(tenant_id="default", dataset_id=gateway.dataset, document_id=document_id,
                                     revision=base + 1)
            for event in (upsert, delete):
                producer.produce(topic, key=event.key, value=DOCUMENT_EVENTS.encode(event))
        assert producer.flush(30) == 0
        for document_id in ids:
            state = gateway.wait(document_id, base + 1)
            assert state["status"] == "deleted", state
        time.sleep(2)
        assert [c for d in ids for c in chunks(pipeline, d)] == []
    finally:
        replica.terminate()
        replica.wait(30)


def test_cancel_while_indexing_removes_the_partial_chunks_and_retry_runs_it_again(pipeline: Settings, gateway: Gateway):
    accepted = gateway.create_text("long.txt", LONG)
    document_id = accepted["document_id"]
    wait_for(lambda: (gateway.state(document_id) or {}).get("status") in ("splitting", "indexing", "completed"),
             what="processing")
    response = gateway.http.post(f"/v1/datasets/{gateway.dataset}/documents/{document_id}/cancel")
    assert response.status_code == 200, response.text
    state = gateway.wait(document_id, accepted["revision"])
    if state["status"] == "cancelled":
        wait_for(lambda: chunks(pipeline, document_id) == [], what="partial chunks removed")
        time.sleep(2)
        assert chunks(pipeline, document_id) == []
        assert gateway.search("tidal turbines estuaries", mode="bm25") == []

    retried = gateway.http.post(f"/v1/datasets/{gateway.dataset}/documents/{document_id}/retry")
    assert retried.status_code == 200, retried.text
    revision = retried.json()["revision"]
    state = gateway.wait(document_id, revision, timeout=300)
    assert state["status"] == "completed" and state["attempts"] == 2, state
    stored = chunks(pipeline, document_id)
    assert stored and {c["revision"] for c in stored} == {revision}


def test_an_update_that_fails_leaves_no_chunk_of_any_revision(pipeline: Settings, gateway: Gateway):
    first = gateway.create_text("report.txt", ALPHA)
    document_id = first["document_id"]
    assert gateway.wait(document_id, first["revision"])["status"] == "completed"
    response = gateway.http.post(
        f"/v1/datasets/{gateway.dataset}/documents/{document_id}/update-by-file",
        files={"file": ("report.pdf", b"%PDF-1.7\n not a PDF at all")},
    )
    assert response.status_code == 200, response.text
    state = gateway.wait(document_id, response.json()["revision"])
    assert state["status"] == "error" and state["searchable_revision"] is None
    wait_for(lambda: chunks(pipeline, document_id) == [], what="old chunks removed")
    assert not [h for h in gateway.search("aurora borealis", mode="bm25") if h["document_id"] == document_id]


def test_during_an_update_search_serves_the_old_revision_only(pipeline: Settings, gateway: Gateway):
    first = gateway.create_text("swap.txt", ALPHA)
    document_id = first["document_id"]
    gateway.wait(document_id, first["revision"])
    second = gateway.update_text(document_id, BETA)
    while gateway.state(document_id)["status"] not in ("completed", "error"):
        hits = [h for h in gateway.search("aurora sourdough", mode="bm25") if h["document_id"] == document_id]
        assert all("aurora" in h["content"] for h in hits), "the new revision showed before it was complete"
        time.sleep(0.1)
    gateway.wait(document_id, second["revision"])
    hits = [h for h in gateway.search("aurora sourdough", mode="bm25") if h["document_id"] == document_id]
    assert hits and all("Sourdough" in h["content"] for h in hits)


def test_document_ids_stay_in_their_dataset_and_commands_work_right_after_create(pipeline: Settings, gateway: Gateway):
    accepted = gateway.create_text("owned.txt", ALPHA, document_id="owned-doc")
    other = Gateway(pipeline, tenant="default", dataset=f"{gateway.dataset}-other")
    response = other.http.post(f"/v1/datasets/{other.dataset}/document/create-by-text",
                               json={"name": "x.txt", "text": BETA, "document_id": "owned-doc"})
    assert response.status_code == 409, response.text
    assert other.http.delete(f"/v1/datasets/{other.dataset}/documents/owned-doc").status_code == 404
    assert other.http.post(f"/v1/datasets/{other.dataset}/documents/owned-doc/pause").status_code == 404
    # Right after create, before any state is projected: the command is accepted.
    response = gateway.http.post(f"/v1/datasets/{gateway.dataset}/documents/owned-doc/cancel")
    assert response.status_code == 200, response.text
    assert gateway.wait("owned-doc", accepted["revision"])["status"] in ("cancelled", "completed")


def test_a_document_recreated_right_after_its_delete_keeps_its_new_content(pipeline: Settings, gateway: Gateway):
    first = gateway.create_text("again.txt", ALPHA, document_id="again")
    gateway.wait("again", first["revision"])
    gateway.delete("again")
    # At once, before the extractor applies the delete: the older delete must not take the new
    # upload's blob or registry entry with it.
    response = gateway.http.post(
        f"/v1/datasets/{gateway.dataset}/document/create-by-file",
        files={"file": ("again.txt", BETA.encode(), "text/plain")}, data={"data": '{"document_id": "again"}'},
    )
    assert response.status_code == 200, response.text
    state = gateway.wait("again", response.json()["revision"])
    assert state["status"] == "completed", state
    retried = gateway.http.post(f"/v1/datasets/{gateway.dataset}/documents/again/retry")
    assert retried.status_code == 200, retried.text
    assert gateway.wait("again", retried.json()["revision"])["status"] == "completed"
    contents = [c["content"] for c in chunks(pipeline, "again")]
    assert contents and all("Sourdough" in c or "starter" in c for c in contents), contents
