"""Sources keep a dataset in sync with where its documents live: a first sync creates every item,
the next publishes only what changed at the source (an edit an update, an addition a creation, a
removal a delete), the unchanged are skipped without a model call; each item keeps one document,
which carries its source and URL in its metadata. Bad definitions are refused with the reason."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import orjson
import pytest

from services.runtime.redis_client import redis_client
from services.runtime.settings import Settings
from services.sources.settings import SourcesSettings
from services.sources.store import SourceStore
from tests.support.gateway import extra_gateway, keyed_client
from tests.support.sources import (
    add_source, create_dataset, eventually, found, killed_and_resumed, settled_documents, sync, wait_run,
)
from tests.test_cli import run
from tests.test_pipeline_e2e import embedding_calls

TEXTS = {
    "harbour.txt": "Harbour pilots board container ships outside the breakwater before they enter port.",
    "orchard/pears.txt": "Pear trees need a second variety nearby, since most pears cannot pollinate themselves.",
    "orchard/apples.txt": "Apple blossoms open in spring and bees carry pollen between the rows of the orchard.",
    "volcano.txt": "Basalt columns form when thick lava flows cool slowly and contract into hexagons.",
}


@pytest.fixture
def http(pipeline: Settings) -> httpx.Client:
    with httpx.Client(base_url=pipeline.gateway_url, headers={"X-Tenant-Id": f"src-{uuid.uuid4().hex[:8]}"},
                      timeout=60) as client:
        yield client


@pytest.fixture
def folder(pipeline: Settings) -> Path:
    """A folder under the root the pipeline's sources may read."""
    path = SourcesSettings().folder_roots[0] / uuid.uuid4().hex
    for name, text in TEXTS.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    return path


def test_a_folder_source_publishes_what_changed_at_the_source_and_nothing_else(
        pipeline: Settings, http: httpx.Client, folder: Path):
    dataset = create_dataset(http, "folder sync")
    source = add_source(http, dataset, "folder", {"path": str(folder)})
    assert source["last_run"] is None and source["every"] is None

    first = sync(http, dataset, source["id"])
    assert (first["status"], first["listed"], first["created"], first["updated"], first["unchanged"],
            first["deleted"], first["failed"]) == ("completed", 4, 4, 0, 0, 0, 0)
    states = settled_documents(http, dataset, 4)
    assert {s["status"] for s in states.values()} == {"completed"}
    ids = {s["name"]: i for i, s in states.items()}
    revisions = {i: s["revision"] for i, s in states.items()}

    calls = embedding_calls(pipeline)
    again = sync(http, dataset, source["id"])
    assert (again["created"], again["updated"], again["unchanged"], again["deleted"]) == (0, 0, 4, 0)
    assert {i: s["revision"] for i, s in settled_documents(http, dataset, 4).items()} == revisions
    assert embedding_calls(pipeline) == calls, "an unchanged item cost a model call"

    (folder / "harbour.txt").write_text(TEXTS["harbour.txt"] + " Tugboats nudge the hull alongside the quay.")
    (folder / "volcano.txt").unlink()
    (folder / "glacier.txt").write_text("Crevasses open where a glacier flows over a step in its bed.")
    synced = sync(http, dataset, source["id"])
    assert (synced["created"], synced["updated"], synced["unchanged"], synced["deleted"], synced["pruned"]) == (
        1, 1, 2, 1, True)
    states = eventually(lambda: (s := settled_documents(http, dataset, 5))[ids["volcano.txt"]]["status"] == "deleted"
                        and s)
    assert states[ids["harbour.txt"]]["revision"] > revisions[ids["harbour.txt"]]
    assert states[ids["pears.txt"]]["revision"] == revisions[ids["pears.txt"]]
    glacier = next(i for i, s in states.items() if s["name"] == "glacier.txt")
    assert eventually(lambda: found(http, dataset, "tugboats quay hull") == {ids["harbour.txt"]})
    assert eventually(lambda: found(http, dataset, "crevasses glacier") == {glacier})
    assert not found(http, dataset, "basalt columns lava hexagons")

    # Each document says where it came from, and a search can filter on it.
    detail = http.get(f"/v1/datasets/{dataset}/documents/{glacier}").json()
    metadata = {m["name"]: m["value"] for m in detail["doc_metadata"]}
    assert metadata == {"source_id": source["id"], "source_url": (folder / "glacier.txt").as_uri()}
    assert found(http, dataset, "crevasses glacier", metadata={"source_id": source["id"]}) == {glacier}
    assert not found(http, dataset, "crevasses glacier", metadata={"source_id": "another"})

    shown = http.get(f"/v1/datasets/{dataset}/sources/{source['id']}").json()
    assert shown["last_run"]["id"] == synced["id"] and shown["last_run"]["finished_at"]
    history = http.get(f"/v1/datasets/{dataset}/sources/{source['id']}/runs").json()["data"]
    assert [r["id"] for r in history] == [synced["id"], again["id"], first["id"]]

    removed = http.delete(f"/v1/datasets/{dataset}/sources/{source['id']}", params={"delete_documents": "true"})
    assert removed.status_code == 200 and removed.json()["documents_deleted"] == 4
    assert eventually(lambda: {s["status"] for s in settled_documents(http, dataset, 5).values()} == {"deleted"})
    assert http.get(f"/v1/datasets/{dataset}/sources/{source['id']}").status_code == 404


def test_a_listing_that_fails_deletes_nothing(pipeline: Settings, http: httpx.Client, folder: Path):
    dataset = create_dataset(http, "folder gone")
    source = add_source(http, dataset, "folder", {"path": str(folder)})
    assert sync(http, dataset, source["id"])["created"] == 4
    folder.rename(folder.with_name(folder.name + "-moved"))
    failed = sync(http, dataset, source["id"])
    assert (failed["status"], failed["deleted"], failed["pruned"]) == ("error", 0, False)
    assert failed["errors"][0]["item"] is None and "not a readable directory" in failed["errors"][0]["reason"]
    assert {s["status"] for s in settled_documents(http, dataset, 4).values()} == {"completed"}


def test_bad_sources_are_refused_with_the_reason(pipeline: Settings, http: httpx.Client, tmp_path: Path):
    dataset = create_dataset(http, "refusals")
    base = f"/v1/datasets/{dataset}/sources"
    refusals = [
        ({"kind": "folder", "name": "n", "config": {"path": str(tmp_path)}}, "not under a folder this server may read"),
        ({"kind": "folder", "name": "n", "config": {"path": "relative/docs"}}, "path must be absolute"),
        ({"kind": "ftp", "name": "n", "config": {}}, "kind"),
        ({"kind": "web", "name": "n", "config": {"url": "http://127.0.0.1/", "colour": "red"}}, "colour"),
        ({"kind": "web", "name": "n", "config": {"url": "http://127.0.0.1/", "include": ["(unclosed"]}},
         "not a regular expression"),
        ({"kind": "s3", "name": "n", "config": {"bucket": "docs"}, "every": 1}, "every must be at least"),
        ({"kind": "notion", "name": "n", "config": {}}, "token"),
    ]
    for body, reason in refusals:
        response = http.post(base, json=body)
        assert response.status_code == 400 and reason in response.json()["message"], (body, response.text)
    assert http.post("/v1/datasets/no-such-dataset/sources",
                     json={"kind": "s3", "name": "n", "config": {"bucket": "docs"}}).status_code == 404
    assert http.post(f"{base}/nope/sync").status_code == 404
    created = http.post(base, json={"kind": "s3", "name": "n", "config": {"bucket": "docs"}}).json()
    assert http.delete(f"{base}/{created['id']}").status_code == 400, "whether the documents go must be said"
    assert http.patch(f"{base}/{created['id']}", json={"config": {"prefix": 3}}).status_code == 400


def test_credentials_are_never_answered(pipeline: Settings, http: httpx.Client):
    dataset = create_dataset(http, "secrets")
    base = f"/v1/datasets/{dataset}/sources"
    # Scheduled, so the service syncs it too; against a closed loopback port its run ends in error.
    created = add_source(http, dataset, "notion", {"token": "secret-token-123", "base_url": "http://127.0.0.1:9"},
                         every=3600)
    assert created["config"]["token"] == "set"
    renamed = http.patch(f"{base}/{created['id']}", json={"name": "renamed", "config": {"database_ids": ["db1"]}})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["config"] == {"token": "set", "database_ids": ["db1"], "base_url": "http://127.0.0.1:9"}
    run = wait_run(http, dataset, created["id"])
    assert run["status"] == "error" and run["errors"], run
    for answer in (http.get(base).text, http.get(f"{base}/{created['id']}").text, renamed.text,
                   http.get(f"{base}/{created['id']}/runs").text):
        assert "secret-token-123" not in answer


def test_a_sync_killed_midway_resumes_from_its_checkpoint_and_ends_with_the_same_documents(
        pipeline: Settings, http: httpx.Client):
    folder = SourcesSettings().folder_roots[0] / uuid.uuid4().hex
    folder.mkdir()
    items = {f"note-{i:03}.txt": f"note-{i:03}.txt" for i in range(300)}
    for i, name in enumerate(items):
        (folder / name).write_text(f"Field note {i}: the {i}th heron of the marsh waded at dawn.")
    dataset = create_dataset(http, "killed sync", indexing_technique="economy")
    source = add_source(http, dataset, "folder", {"path": str(folder)})
    killed_and_resumed(http, dataset, source["id"], pipeline.state_dir, items)


def test_deleting_a_dataset_removes_its_sources(pipeline: Settings, http: httpx.Client, folder: Path):
    dataset = create_dataset(http, "deleted with its sources")
    source = add_source(http, dataset, "folder", {"path": str(folder)}, every=3600)
    wait_run(http, dataset, source["id"])
    assert http.delete(f"/v1/datasets/{dataset}").status_code == 204
    store = SourceStore(redis_client(pipeline), pipeline.keys)
    assert store.get(http.headers["X-Tenant-Id"], source["id"]) is None, "a deleted dataset's source syncs on"


def test_with_api_keys_a_source_may_not_reach_private_networks(pipeline: Settings):
    with extra_gateway(INDEXFLOW_AUTH="api_keys") as url:
        _tenant, client = keyed_client(pipeline, "src-keyed", url)
        dataset = create_dataset(client, "private networks")
        for kind, config in (("web", {"url": "http://127.0.0.1:16379/"}),
                             ("notion", {"token": "t", "base_url": "http://169.254.169.254"}),
                             ("s3", {"bucket": "internal", "endpoint_url": "http://localhost:9000"})):
            response = client.post(f"/v1/datasets/{dataset}/sources", json={"kind": kind, "name": kind, "config": config})
            assert response.status_code == 400 and "not a public address" in response.json()["message"], response.text


def test_the_cli_adds_lists_syncs_and_removes_a_source(pipeline: Settings, http: httpx.Client, folder: Path):
    tenant = http.headers["X-Tenant-Id"]
    dataset = create_dataset(http, "cli sources", indexing_technique="economy")
    target = ("--dataset", dataset, "--tenant", tenant)
    added = orjson.loads(run("sources", "add", *target, "--kind", "folder", "--name", "notes",
                             "--config", orjson.dumps({"path": str(folder)}).decode(), "--json"))
    finished = orjson.loads(run("sources", "sync", added["id"], *target, "--json"))
    assert (finished["status"], finished["created"]) == ("completed", 4)
    [listed] = orjson.loads(run("sources", "list", *target, "--json"))
    assert listed["id"] == added["id"] and listed["last_run"]["id"] == finished["id"]
    # The dashboard's overview shows each source's last run under its dataset.
    [shown] = [d for d in http.get("/v1/ops/overview").json()["datasets"] if d["id"] == dataset]
    assert [(s["id"], s["last_run"]["id"], s["last_run"]["created"]) for s in shown["sources"]] == [
        (added["id"], finished["id"], 4)]
    assert "4 listed: 0 new, 0 updated, 4 unchanged" in run("sources", "sync", added["id"], *target)
    assert "4 documents deleted" in run("sources", "remove", added["id"], *target, "--delete-documents")
    assert orjson.loads(run("sources", "list", *target, "--json")) == []
