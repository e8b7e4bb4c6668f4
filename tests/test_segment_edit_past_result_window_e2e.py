"""A document of more chunks than one Elasticsearch search returns (index.max_result_window,
10,000): listing its segments shows all of them, and editing one publishes a revision that keeps
every other segment, through the gateway and the pipeline."""

from __future__ import annotations

from elasticsearch import Elasticsearch

from schemas import TERMINAL_STATUSES
from services.indexer.mapping import all_chunk_indices
from services.runtime.settings import Settings
from tests.support.gateway import Gateway
from tests.support.waiting import wait_for

SEGMENTS = 10_050
ONE_PER_LINE = {"mode": "custom", "rules": {"pre_processing_rules": [],
                                             "segmentation": {"separator": "\n", "max_tokens": 50}}}


def indexed(settings: Settings, document_key: str, revision: int) -> int:
    es = Elasticsearch(settings.elasticsearch_url)
    es.indices.refresh(index=all_chunk_indices(settings.topic_prefix), allow_no_indices=True)
    query = {"bool": {"filter": [{"term": {"document_key": document_key}}, {"term": {"revision": revision}}]}}
    return es.count(index=all_chunk_indices(settings.topic_prefix), query=query, allow_no_indices=True)["count"]


def test_editing_one_segment_of_a_document_past_the_result_window_keeps_every_other(pipeline: Settings):
    gateway = Gateway(pipeline, tenant="default", dataset="past-the-result-window")
    text = "\n".join(f"Ledger line {n} records {n % 97} crates landed at the harbour." for n in range(SEGMENTS))
    accepted = gateway.create_text("ledger.txt", text, indexing_technique="economy", process_rule=ONE_PER_LINE)
    document_id = accepted["document_id"]
    state = gateway.wait(document_id, accepted["revision"], timeout=600)
    assert state["status"] == "completed" and state["segment_count"] == SEGMENTS, state

    segments = f"/v1/datasets/{gateway.dataset}/documents/{document_id}/segments"
    [first] = gateway.http.get(segments, params={"limit": 1}).json()["data"]
    assert first["content"] == "Ledger line 0 records 0 crates landed at the harbour."
    edited = gateway.http.post(f"{segments}/{first['id']}", json={"segment": {"content": "Ledger line 0 struck out."}})
    assert edited.status_code == 200, edited.text

    state = wait_for(lambda: (s := gateway.state(document_id)) and s["revision"] > accepted["revision"]
                     and s["status"] in TERMINAL_STATUSES and s, what="the edit indexed", timeout=600)
    assert state["status"] == "completed", state
    assert indexed(pipeline, f"default/{document_id}", state["revision"]) == SEGMENTS
    assert state["segment_count"] == SEGMENTS

    listed = gateway.http.get(segments, params={"page": 101, "limit": 100}).json()
    assert listed["total"] == SEGMENTS
    assert [s["content"] for s in listed["data"]] == [
        f"Ledger line {n} records {n % 97} crates landed at the harbour." for n in range(10_000, SEGMENTS)]


def test_an_edit_that_cannot_read_every_chunk_of_the_revision_is_refused(pipeline: Settings):
    gateway = Gateway(pipeline, tenant="default", dataset="edit-of-a-short-read")
    accepted = gateway.create_text("three.txt", "Heron.\nOtter.\nKestrel.", indexing_technique="economy",
                                   process_rule=ONE_PER_LINE)
    document_id = accepted["document_id"]
    assert gateway.wait(document_id, accepted["revision"])["status"] == "completed"
    segments = f"/v1/datasets/{gateway.dataset}/documents/{document_id}/segments"
    heron, otter, _ = gateway.http.get(segments).json()["data"]
    es = Elasticsearch(pipeline.elasticsearch_url)  # a write the index lost: the registry still counts it
    es.delete_by_query(index=all_chunk_indices(pipeline.topic_prefix), refresh=True,
                       query={"term": {"segment_id": otter["index_node_id"]}})

    refused = gateway.http.post(f"{segments}/{heron['id']}", json={"segment": {"content": "Heron, flying."}})
    assert refused.status_code == 503 and refused.json()["code"] == "service_unavailable", refused.text
    assert gateway.state(document_id)["revision"] == accepted["revision"]  # nothing published
