"""A notion source syncs the pages shared with its integration, or a database's, through a local
stand-in speaking Notion's API: last_edited_time tells what changed (an unchanged page costs no
block request and no model call), a trashed page is deleted, a 429 is waited out, and the token is
never answered."""

from __future__ import annotations

import uuid

import httpx
import pytest

from services.runtime.settings import Settings
from tests.support.notion_standin import Block, NotionStandIn
from tests.support.sources import (
    add_source, create_dataset, eventually, found, killed_and_resumed, settled_documents, sync,
)
from tests.test_pipeline_e2e import embedding_calls

TOKEN = "secret_notion_token_8d1e"


@pytest.fixture
def http(pipeline: Settings) -> httpx.Client:
    with httpx.Client(base_url=pipeline.gateway_url, headers={"X-Tenant-Id": f"notion-{uuid.uuid4().hex[:8]}"},
                      timeout=60) as client:
        yield client


def test_a_notion_source_syncs_pages_by_last_edited_time(pipeline: Settings, http: httpx.Client):
    with NotionStandIn(TOKEN) as notion:
        beekeeping = notion.put("Beekeeping", Block("heading_1", "Hives"),
                                Block("paragraph", "Worker bees build wax comb in hexagonal cells.",
                                      [Block("bulleted_list_item", "Drones have no sting at all.")]))
        notion.put("Bread", Block("paragraph", "Rye dough needs a sour starter to rise."))
        compost = notion.put("Compost", Block("paragraph", "Compost heaps need nitrogen and carbon layers."))
        notion.put("Cheese", Block("paragraph", "Cheddar matures for months in cool cellars."), database="db-1")
        trashed = notion.put("Old", Block("paragraph", "Long forgotten notes."))
        notion.trash(trashed)
        notion.rate_limited = 1

        dataset = create_dataset(http, "notion sync")
        source = add_source(http, dataset, "notion", {"token": TOKEN, "base_url": notion.url})
        first = sync(http, dataset, source["id"])
        assert (first["status"], first["listed"], first["created"], first["failed"]) == ("completed", 4, 4, 0), first
        states = settled_documents(http, dataset, 4)
        assert {s["status"] for s in states.values()} == {"completed"}
        ids = {s["name"]: i for i, s in states.items()}
        assert set(ids) == {"Beekeeping", "Bread", "Compost", "Cheese"}
        # Nested blocks are part of the page's text.
        assert eventually(lambda: found(http, dataset, "drones sting") == {ids["Beekeeping"]})

        calls = embedding_calls(pipeline)
        notion.requests.clear()
        again = sync(http, dataset, source["id"])
        assert (again["created"], again["updated"], again["unchanged"], again["deleted"]) == (0, 0, 4, 0)
        assert {path for _, path in notion.requests} == {"/v1/search"}, "an unchanged page was read"
        assert embedding_calls(pipeline) == calls

        notion.put("Beekeeping", Block("paragraph", "Queen bees lay up to two thousand eggs a day."),
                   page_id=beekeeping)
        notion.trash(compost)
        notion.put("Kombucha", Block("quote", "A scoby ferments sweet tea into kombucha."))
        synced = sync(http, dataset, source["id"])
        assert (synced["created"], synced["updated"], synced["unchanged"], synced["deleted"]) == (1, 1, 2, 1), synced
        states = eventually(lambda: (s := settled_documents(http, dataset, 5))[ids["Compost"]]["status"]
                            == "deleted" and s)
        kombucha = next(i for i, s in states.items() if s["name"] == "Kombucha")
        assert eventually(lambda: found(http, dataset, "queen eggs") == {ids["Beekeeping"]})
        assert eventually(lambda: found(http, dataset, "scoby sweet tea") == {kombucha})
        assert not found(http, dataset, "nitrogen carbon layers")
        assert not found(http, dataset, "worker wax comb")
        detail = http.get(f"/v1/datasets/{dataset}/documents/{kombucha}").json()
        metadata = {m["name"]: m["value"] for m in detail["doc_metadata"]}
        assert metadata["source_id"] == source["id"] and metadata["source_url"].startswith("https://www.notion.so/")

        # A database's pages only; a wrong token is the run's error, the token never answered.
        database = add_source(http, dataset, "notion", {"token": TOKEN, "base_url": notion.url,
                                                        "database_ids": ["db-1"]})
        assert (sync(http, dataset, database["id"])["listed"]) == 1
        wrong = add_source(http, dataset, "notion", {"token": "wrong", "base_url": notion.url})
        refused = sync(http, dataset, wrong["id"])
        assert refused["status"] == "error" and "API token is invalid" in refused["errors"][0]["reason"]
        for answer in (http.get(f"/v1/datasets/{dataset}/sources").text,
                       http.get(f"/v1/datasets/{dataset}/sources/{source['id']}/runs").text):
            assert TOKEN not in answer


def test_a_notion_sync_killed_midway_resumes_and_ends_with_the_same_documents(pipeline: Settings, http: httpx.Client):
    with NotionStandIn(TOKEN, page_limit=100) as notion:
        pages = {notion.put(f"Heron {i}", Block("paragraph", f"The {i}th heron of the marsh waded at dawn.")):
                 f"Heron {i}" for i in range(150)}
        dataset = create_dataset(http, "killed notion sync", indexing_technique="economy")
        source = add_source(http, dataset, "notion", {"token": TOKEN, "base_url": notion.url})
        killed_and_resumed(http, dataset, source["id"], pipeline.state_dir, pages)
