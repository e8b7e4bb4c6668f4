"""Ingest is a sync: stable ids per file, unchanged content skipped (no revision, no model call),
changed content an update, files gone pruned; the gateway answers an unchanged upsert with the
document's state instead of a new revision."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from services.runtime.settings import Settings
from tests.support.gateway import Gateway
from tests.test_cli import run
from tests.test_observability_e2e import scrape, total
from tests.test_pipeline_e2e import ALPHA, BETA, embedding_calls

GAMMA = "Glaciers carve fjords as they retreat, leaving moraines of gravel and boulders behind them."


def ingest(folder: Path, *options: str) -> dict:
    return orjson.loads(run("ingest", str(folder), "--dataset", "sync", "--tenant", "sync", "--json", *options))


def test_ingest_skips_unchanged_files_updates_changed_ones_and_prunes_the_gone(pipeline: Settings, tmp_path: Path):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "lighthouse.txt").write_text(ALPHA)
    (folder / "sub" / "tides.txt").write_text(BETA)
    (folder / "glaciers.txt").write_text(GAMMA)
    (folder / "empty.txt").write_text("")

    first = ingest(folder)
    assert (first["created"], first["updated"], first["unchanged"]) == (4, 0, 0)
    assert first["completed"] == 3 and first["error"] == 1
    ids = {s["name"]: s["document_id"] for s in first["states"]}
    revisions = {s["document_id"]: s["revision"] for s in first["states"]}
    calls = embedding_calls(pipeline)

    again = ingest(folder)
    # The file that ended in error is tried again; the completed ones are left alone.
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 1, 3)
    assert again["completed"] == 3 and again["error"] == 1
    assert {s["name"]: s["document_id"] for s in again["states"]} == ids, "the same file keeps its document"
    assert {s["document_id"]: s["revision"] for s in again["states"] if s["name"] != "empty.txt"} == {
        i: r for i, r in revisions.items() if i != ids["empty.txt"]}
    assert embedding_calls(pipeline) == calls

    (folder / "sub" / "tides.txt").write_text(BETA + "\n\nNeap tides follow the quarter moons.")
    (folder / "glaciers.txt").unlink()
    (folder / "empty.txt").unlink()
    (folder / "dunes.txt").write_text("Dunes migrate downwind as sand saltates over their crests.")
    synced = ingest(folder, "--prune")
    assert (synced["created"], synced["updated"], synced["unchanged"], synced["deleted"]) == (1, 1, 1, 2)
    by_name = {s["name"]: s for s in synced["states"]}
    assert by_name["tides.txt"]["document_id"] == ids["tides.txt"]
    assert by_name["tides.txt"]["revision"] > revisions[ids["tides.txt"]]
    assert by_name["glaciers.txt"]["status"] == "deleted" and by_name["empty.txt"]["status"] == "deleted"
    gateway = Gateway(pipeline, tenant="sync", dataset="sync")
    assert gateway.search("neap tides quarter moons", mode="full_text", top_k=1)[0]["document_id"] == ids["tides.txt"]
    assert not gateway.search("glaciers moraines fjords", mode="full_text")


@pytest.fixture
def gateway(pipeline: Settings) -> Gateway:
    return Gateway(pipeline, tenant="sync-gateway", dataset="upserts")


def test_an_unchanged_upsert_answers_the_documents_state_without_a_new_revision(pipeline: Settings, gateway: Gateway):
    first = gateway.create_text("same.txt", ALPHA, document_id="same")
    gateway.wait("same", first["revision"])

    again = gateway.create_text("same.txt", ALPHA, document_id="same")
    assert again["unchanged"] is True and again["revision"] == first["revision"]
    assert again["status"] == "completed"
    assert gateway.state("same")["revision"] == first["revision"]
    assert gateway.state("same")["content_hash"] == again["content_hash"]

    # Anything else that differs is a new revision: the text, the name, the metadata, the options.
    changes = [
        {"name": "same.txt", "text": ALPHA + " More."},
        {"name": "renamed.txt", "text": ALPHA + " More."},
        {"name": "renamed.txt", "text": ALPHA + " More.", "metadata": {"year": 2024}},
        {"name": "renamed.txt", "text": ALPHA + " More.", "metadata": {"year": 2024}, "indexing_technique": "economy"},
    ]
    revision = first["revision"]
    for change in changes:
        accepted = gateway.create_text(document_id="same", **change)
        assert accepted["unchanged"] is False and accepted["revision"] > revision, change
        revision = accepted["revision"]
    assert gateway.wait("same", revision)["status"] == "completed"

    # A file: the same bytes uploaded twice make one revision.
    url = f"/v1/datasets/{gateway.dataset}/document/create-by-file"
    data = {"data": orjson.dumps({"document_id": "file"}).decode()}
    uploaded = gateway.http.post(url, files={"file": ("f.txt", BETA.encode(), "text/plain")}, data=data).json()
    gateway.wait("file", uploaded["revision"])
    repeated = gateway.http.post(url, files={"file": ("f.txt", BETA.encode(), "text/plain")}, data=data).json()
    assert repeated["unchanged"] is True and repeated["revision"] == uploaded["revision"]

    # A deleted document comes back as a new revision, even with the same text.
    gateway.delete("file")
    revived = gateway.http.post(url, files={"file": ("f.txt", BETA.encode(), "text/plain")}, data=data).json()
    assert revived["unchanged"] is False and revived["revision"] > uploaded["revision"]
    assert gateway.wait("file", revived["revision"])["status"] == "completed"


def test_following_an_ingest_polls_its_pending_documents_not_the_dataset(pipeline: Settings, tmp_path: Path):
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(5):
        (folder / f"note-{i}.txt").write_text(f"{GAMMA} Note {i} of the survey.")
    listing = "/v1/datasets/{dataset_id}/documents"

    def listings() -> float:
        return total(scrape(f"{pipeline.gateway_url}/metrics"), "indexflow_http_requests_total", route=listing,
                     method="GET")

    before = listings()
    summary = orjson.loads(run("ingest", str(folder), "--dataset", "polled", "--tenant", "sync", "--json"))
    assert summary["completed"] == 5
    assert listings() - before == 1, "one listing, of what the dataset held before the sync; then no more"

    # What the follower polls: the states of the documents named, of this dataset only.
    ids = [s["document_id"] for s in summary["states"]]
    gateway = Gateway(pipeline, tenant="sync", dataset="polled")
    answer = gateway.http.post("/v1/datasets/polled/documents/states", json={"document_ids": [ids[0], "no-such"]})
    assert [(s["document_id"], s["status"]) for s in answer.json()["data"]] == [(ids[0], "completed")]
    other = Gateway(pipeline, tenant="sync", dataset="polled-other")
    other.create_text("other.txt", GAMMA)
    elsewhere = other.http.post("/v1/datasets/polled-other/documents/states", json={"document_ids": ids})
    assert elsewhere.status_code == 200 and elsewhere.json()["data"] == [], "another dataset's documents"
    stranger = Gateway(pipeline, tenant="sync-stranger", dataset="polled")
    assert stranger.http.post("/v1/datasets/polled/documents/states", json={"document_ids": ids}).status_code == 404
