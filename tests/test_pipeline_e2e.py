"""The whole pipeline on the embedded stack, through the gateway API, as a user drives it."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from elasticsearch import Elasticsearch

from schemas import DocumentCommand, DocumentUpserted, InlineSource
from services.indexer.mapping import all_chunk_indices, index_name
from services.projector.rebuild import rebuild
from services.projector.store import StateStore
from services.runtime.packing import STATES
from services.runtime.producer import Producer
from services.runtime.redis_client import redis_client
from services.runtime.settings import Settings
from services.runtime.tenants import Tenants
from tests.support.gateway import Gateway
from topics.catalog import DOCUMENTS

ALPHA = (
    "The aurora borealis appears when charged particles from the sun strike the upper atmosphere.\n\n"
    "Observers in Tromsø see green curtains of light during the long polar winter nights."
)
BETA = (
    "Sourdough bread rises because wild yeast and lactobacilli ferment the dough slowly.\n\n"
    "A mature starter doubles in size within six hours at room temperature."
)


def chunks(settings: Settings, document_id: str, tenant: str = "default") -> list[dict]:
    es = Elasticsearch(settings.elasticsearch_url)
    es.indices.refresh(index=all_chunk_indices(settings.topic_prefix), allow_no_indices=True)
    result = es.search(
        index=all_chunk_indices(settings.topic_prefix),
        query={"term": {"document_key": f"{tenant}/{document_id}"}},
        size=1000,
        allow_no_indices=True,
    )
    return [dict(hit["_source"], _index=hit["_index"]) for hit in result["hits"]["hits"]]


def embedding_calls(settings: Settings) -> int:
    counts = redis_client(settings).hgetall(settings.keys.embedding_calls)
    return sum(int(v) for v in counts.values())


@pytest.fixture
def gateway(pipeline: Settings, request: pytest.FixtureRequest) -> Gateway:
    return Gateway(pipeline, tenant="default", dataset=request.node.name.replace("_", "-")[:60])


def test_a_document_passes_through_every_state_and_becomes_searchable(pipeline: Settings, gateway: Gateway):
    accepted = gateway.create_text("aurora.txt", ALPHA)
    state = gateway.wait(accepted["document_id"], accepted["revision"])

    assert state["status"] == "completed", state
    assert state["progress"] == 1.0 and state["attempts"] == 1
    assert state["segment_count"] == 1 and state["token_count"] > 20
    transitions = state["transitions"]
    assert list(transitions) == ["waiting", "parsing", "splitting", "indexing", "completed"]
    times = [datetime.fromisoformat(t) for t in transitions.values()]
    assert times == sorted(times)
    assert state["indexing_latency"] == pytest.approx((times[-1] - times[0]).total_seconds(), abs=0.01)

    for mode in ("bm25", "semantic", "hybrid"):
        hits = gateway.search("green lights in the polar night sky", mode=mode)
        assert hits and hits[0]["document_id"] == accepted["document_id"], (mode, hits)


def test_update_replaces_every_chunk_and_delete_removes_them(pipeline: Settings, gateway: Gateway):
    first = gateway.create_text("notes.txt", ALPHA)
    gateway.wait(first["document_id"], first["revision"])
    document_id = first["document_id"]
    assert {c["revision"] for c in chunks(pipeline, document_id)} == {first["revision"]}

    second = gateway.update_text(document_id, BETA)
    assert second["revision"] > first["revision"]
    state = gateway.wait(document_id, second["revision"])
    assert state["status"] == "completed" and state["name"] == "notes.txt"
    stored = chunks(pipeline, document_id)
    assert stored and {c["revision"] for c in stored} == {second["revision"]}, "no stale chunk may survive"
    assert all("aurora" not in c["content"] for c in stored)
    assert not [h for h in gateway.search("aurora borealis", mode="bm25") if h["document_id"] == document_id]

    deleted = gateway.delete(document_id)
    state = gateway.wait(document_id, deleted["revision"])
    assert state["status"] == "deleted"
    assert chunks(pipeline, document_id) == []


def test_an_update_mid_flight_wins(pipeline: Settings, gateway: Gateway):
    first = gateway.create_text("race.txt", ALPHA)
    second = gateway.update_text(first["document_id"], BETA)  # before the first is indexed
    state = gateway.wait(first["document_id"], second["revision"])
    assert state["status"] == "completed" and state["revision"] == second["revision"]
    stored = chunks(pipeline, first["document_id"])
    assert stored and all(c["revision"] == second["revision"] and "aurora" not in c["content"] for c in stored)


def test_economy_documents_get_bm25_only_and_no_embedding_calls(pipeline: Settings, gateway: Gateway):
    calls = embedding_calls(pipeline)
    accepted = gateway.create_text("economy.txt", "Quokkas are small marsupials living on Rottnest Island.",
                                   indexing_technique="economy")
    assert gateway.wait(accepted["document_id"], accepted["revision"])["status"] == "completed"

    [chunk] = chunks(pipeline, accepted["document_id"])
    assert chunk["_index"] == index_name(pipeline.topic_prefix, None, ("default", gateway.dataset))
    assert "vector" not in chunk
    assert embedding_calls(pipeline) == calls
    assert [h["document_id"] for h in gateway.search("quokkas Rottnest", mode="bm25")] == [accepted["document_id"]]
    assert gateway.search("quokkas Rottnest", mode="semantic") == []


def test_hierarchical_search_matches_a_child_and_returns_its_parent(pipeline: Settings, gateway: Gateway):
    parent = (
        "Lighthouses guided ships for centuries.\n"
        "The Fresnel lens concentrated the lamp's light into a beam visible for miles.\n"
        "Keepers trimmed the wicks every night."
    )
    text = parent + "\n\n" + BETA
    accepted = gateway.create_text("hier.txt", text, process_rule={"mode": "hierarchical"})
    state = gateway.wait(accepted["document_id"], accepted["revision"])
    assert state["status"] == "completed" and state["segment_count"] == 3  # one parent per paragraph

    stored = chunks(pipeline, accepted["document_id"])
    assert {c["kind"] for c in stored} == {"child"} and len(stored) == 5
    [hit] = [h for h in gateway.search("Fresnel lens beam", mode="bm25", top_k=1)]
    assert "Fresnel" in hit["matched"] and hit["matched"] != hit["content"]
    assert hit["content"] == parent


def test_reingesting_unchanged_text_makes_zero_embedding_calls(pipeline: Settings, gateway: Gateway):
    texts = {"one.txt": ALPHA + "\n\nCached once.", "two.txt": BETA + "\n\nCached twice."}
    for name, text in texts.items():
        accepted = gateway.create_text(name, text)
        gateway.wait(accepted["document_id"], accepted["revision"])
    calls = embedding_calls(pipeline)

    for name, text in texts.items():  # new documents, same text
        accepted = gateway.create_text(f"copy-of-{name}", text)
        assert gateway.wait(accepted["document_id"], accepted["revision"])["status"] == "completed"
    assert embedding_calls(pipeline) == calls


def test_bad_requests_get_clear_errors(pipeline: Settings, gateway: Gateway):
    response = gateway.http.post(
        f"/v1/datasets/{gateway.dataset}/document/create-by-text",
        json={"name": "x.txt", "text": "t", "process_rule": {"mode": "custom", "segmentation": {"max_tokens": 5}}},
    )
    assert response.status_code == 400 and "max_tokens" in response.text
    assert gateway.http.delete(f"/v1/datasets/{gateway.dataset}/documents/nope").status_code == 404
    assert gateway.state("nope") is None

    # A 1,000-character file name: refused before anything is stored.
    blobs = pipeline.state_dir.resolve() / "blobs" / "default"
    before = sorted(blobs.rglob("*")) if blobs.exists() else []
    response = gateway.http.post(f"/v1/datasets/{gateway.dataset}/document/create-by-file",
                                 files={"file": ("n" * 996 + ".txt", b"some text", "text/plain")})
    assert response.status_code == 400 and "file name" in response.text
    assert (sorted(blobs.rglob("*")) if blobs.exists() else []) == before, "no blob left behind"

    # A 100 KB query is refused at once, not sent to Elasticsearch.
    response = gateway.http.post(f"/v1/datasets/{gateway.dataset}/retrieve", json={"query": "tidal " * 20_000})
    assert response.status_code == 400 and "query" in response.text


def test_projector_state_is_rebuilt_from_the_status_topic_alone(pipeline: Settings, gateway: Gateway):
    accepted = gateway.create_text("rebuild.txt", ALPHA)
    gateway.wait(accepted["document_id"], accepted["revision"])
    store = StateStore(redis_client(pipeline), pipeline.keys)
    client = redis_client(pipeline)

    tenants = Tenants(client, pipeline.keys).all()

    def snapshot() -> dict:
        return {
            key: {f: v for f, v in STATES.loads(key.decode(), raw).items() if f not in ("event_id", "produced_at")}
            for tenant in tenants for key, raw in client.hgetall(pipeline.keys.states(tenant)).items()
        }

    live = snapshot()
    client.delete(*(key for tenant in tenants for key in (pipeline.keys.states(tenant),
                                                          pipeline.keys.state_positions(tenant))))
    assert rebuild(pipeline).written == len(live)
    assert snapshot() == live
    assert store.get(f"default/{accepted['document_id']}").status == "completed"


def test_a_failed_document_ends_in_error_with_its_reason_and_can_be_retried(pipeline: Settings, gateway: Gateway):
    response = gateway.http.post(
        f"/v1/datasets/{gateway.dataset}/document/create-by-file",
        files={"file": ("broken.pdf", b"%PDF-1.7\n this is not really a PDF")},
    )
    assert response.status_code == 200, response.text
    document_id, revision = response.json()["document_id"], response.json()["revision"]
    state = gateway.wait(document_id, revision)
    assert state["status"] == "error" and state["error_stage"] == "extractor"
    assert state["error"].startswith("corrupt or unreadable PDF"), state["error"]
    assert state["attempts"] == 1

    assert gateway.http.post(f"/v1/datasets/{gateway.dataset}/documents/{document_id}/retry").status_code == 200
    deadline = time.monotonic() + 60
    while (state := gateway.state(document_id))["attempts"] < 2 or state["status"] != "error":
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    assert state["error"].startswith("corrupt or unreadable PDF")


def test_a_paused_document_waits_until_resumed(pipeline: Settings, gateway: Gateway):
    # The pause reaches the extractor before the document (same key, same partition), so the
    # document's records are parked deterministically instead of racing the pipeline.
    document_id, revision = "paused-doc", int(time.time() * 1000)
    identity = dict(tenant_id="default", dataset_id=gateway.dataset, document_id=document_id, revision=revision)
    producer = Producer(pipeline)
    producer.publish(DOCUMENTS, DocumentCommand(**identity, command="pause"))
    producer.publish(DOCUMENTS, DocumentUpserted(**identity, name="paused.txt", source=InlineSource(text=ALPHA)))
    producer.flush()
    deadline = time.monotonic() + 60
    while (gateway.state(document_id) or {}).get("status") != "paused":
        assert time.monotonic() < deadline, gateway.state(document_id)
        time.sleep(0.2)
    time.sleep(2)  # the parked upsert must stay parked
    assert gateway.state(document_id)["status"] == "paused"
    assert chunks(pipeline, document_id) == []

    response = gateway.http.post(f"/v1/datasets/{gateway.dataset}/documents/{document_id}/resume")
    assert response.status_code == 200, response.text
    state = gateway.wait(document_id, revision)
    assert state["status"] == "completed" and len(chunks(pipeline, document_id)) == 1
