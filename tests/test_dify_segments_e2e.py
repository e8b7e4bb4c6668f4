"""Dify's segment and child-chunk API, driven by dify-dataset-sdk: every edit is a new revision
through the pipeline (re-embedded, indexed), segments keep their ids across edits, an edit is
searchable when its answer arrives, and concurrent edits of one document are all kept."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from dify_dataset_sdk import DifyDatasetClient
from dify_dataset_sdk._exceptions import DifyNotFoundError, DifyValidationError
from dify_dataset_sdk.datasets.models import RetrievalModel
from dify_dataset_sdk.documents.models import ProcessRule, ProcessRuleConfig, Segmentation, SubchunkSegmentation

from services.gateway.api_keys import ApiKeys
from services.runtime.redis_client import redis_client
from services.runtime.settings import Settings
from tests.support.dify import completed

ANIMALS = "The heron waits in the reeds.###The otter dives under the ice.###The kestrel hovers above the field."


@pytest.fixture(scope="module")
def api_key(pipeline: Settings) -> str:
    return ApiKeys(redis_client(pipeline), pipeline.keys).create(f"seg-{uuid.uuid4().hex[:8]}", "segments")[0]


@pytest.fixture
def client(pipeline: Settings, api_key: str) -> DifyDatasetClient:
    with DifyDatasetClient(api_key=api_key, base_url=pipeline.gateway_url) as sdk:
        yield sdk


def new_document(client: DifyDatasetClient, text: str, **options) -> tuple[str, str]:
    dataset = client.datasets.create(name=f"Segments {uuid.uuid4().hex[:8]}")
    rule = options.pop("process_rule", ProcessRule(mode="custom", rules=ProcessRuleConfig(
        pre_processing_rules=[], segmentation=Segmentation(separator="###", max_tokens=100))))
    created = client.documents.create_by_text(dataset.id, name="animals.txt", text=text, process_rule=rule, **options)
    completed(client, dataset.id, created.batch)
    return dataset.id, created.document.id


def found(client: DifyDatasetClient, dataset_id: str, query: str) -> list:
    model = RetrievalModel(search_method="full_text_search", reranking_enable=False, top_k=5,
                           score_threshold_enabled=False)
    return client.datasets.retrieve(dataset_id, query, retrieval_model=model).records


def test_segments_are_added_updated_disabled_and_deleted_through_the_pipeline(client: DifyDatasetClient):
    dataset, document = new_document(client, ANIMALS)
    heron, otter, kestrel = client.segments.list(dataset, document).data

    [badger] = client.segments.create(dataset, document, [{"content": "The badger digs a sett under the oak."}]).data
    assert badger.position == 4 and badger.content.startswith("The badger") and badger.status == "completed"
    listed = client.segments.list(dataset, document).data
    assert [s.id for s in listed] == [heron.id, otter.id, kestrel.id, badger.id]  # ids kept across the edit
    [hit] = found(client, dataset, "badger sett")  # searchable when the answer arrives
    assert hit.segment.id == badger.id

    edited = client.segments.update(dataset, document, otter.id, {"content": "The otter slides down the muddy bank."})
    assert edited["data"]["id"] == otter.id and edited["data"]["content"].endswith("muddy bank.")
    assert [hit.segment.id for hit in found(client, dataset, "muddy bank")] == [otter.id]
    assert found(client, dataset, "dives ice") == []  # the old text is gone from search

    client.segments.update(dataset, document, heron.id, {"enabled": False})
    assert found(client, dataset, "heron reeds") == []
    assert client.segments.get(dataset, document, heron.id)["data"]["enabled"] is False  # listed, not searched
    with pytest.raises(DifyValidationError):  # as Dify: a disabled segment is enabled before it is edited
        client.segments.update(dataset, document, heron.id, {"content": "The heron flies off."})
    client.segments.update(dataset, document, heron.id, {"enabled": True})
    assert [hit.segment.id for hit in found(client, dataset, "heron reeds")] == [heron.id]

    client.segments.delete(dataset, document, badger.id)
    with pytest.raises(DifyNotFoundError):
        client.segments.get(dataset, document, badger.id)
    assert found(client, dataset, "badger sett") == []
    assert [s.id for s in client.segments.list(dataset, document).data] == [heron.id, otter.id, kestrel.id]
    with pytest.raises(DifyNotFoundError):
        client.segments.update(dataset, document, str(uuid.uuid4()), {"content": "nobody's"})
    with pytest.raises(DifyValidationError):
        client.segments.create(dataset, document, [{"content": "   "}])


def test_a_document_s_last_segment_is_not_deleted(client: DifyDatasetClient):
    dataset, document = new_document(client, "The only paragraph.")
    [only] = client.segments.list(dataset, document).data
    with pytest.raises(DifyValidationError):  # the document would have nothing left to index
        client.segments.delete(dataset, document, only.id)
    assert [s.id for s in client.segments.list(dataset, document).data] == [only.id]


def test_child_chunks_of_a_hierarchical_document(client: DifyDatasetClient):
    rule = ProcessRule(mode="hierarchical", rules=ProcessRuleConfig(
        pre_processing_rules=[], segmentation=Segmentation(separator="\n\n", max_tokens=500),
        parent_mode="paragraph", subchunk_segmentation=SubchunkSegmentation(separator="\n", max_tokens=100)))
    text = "The harbour at dawn.\nBoats leave the quay.\n\nThe market at noon.\nStalls sell figs."
    dataset, document = new_document(client, text, doc_form="hierarchical_model", process_rule=rule)
    harbour, market = client.segments.list(dataset, document).data

    chunk = client.segments.create_child_chunk(dataset, document, harbour.id, "A lantern hangs by the gate.")["data"]
    children = client.segments.list_child_chunks(dataset, document, harbour.id).data
    assert [c.content for c in children][-1] == "A lantern hangs by the gate." and children[-1].id == chunk["id"]
    [hit] = found(client, dataset, "lantern")
    assert hit.segment.id == harbour.id and hit.child_chunks[0].id == chunk["id"]

    changed = client.segments.update_child_chunk(dataset, document, harbour.id, chunk["id"], "A lamp glows by the gate.")
    assert changed["data"]["id"] == chunk["id"]
    assert found(client, dataset, "lantern") == []
    assert [h.segment.id for h in found(client, dataset, "lamp")] == [harbour.id]

    client.segments.delete_child_chunk(dataset, document, harbour.id, chunk["id"])
    assert found(client, dataset, "lamp") == []
    assert len(client.segments.list_child_chunks(dataset, document, harbour.id).data) == len(children) - 1
    assert [s.id for s in client.segments.list(dataset, document).data] == [harbour.id, market.id]


def test_concurrent_edits_of_one_document_are_all_kept(pipeline: Settings, api_key: str, client):
    dataset, document = new_document(client, ANIMALS)
    words = ["alder", "birch", "cedar", "hazel", "larch", "maple"]

    def add(word: str) -> None:
        with DifyDatasetClient(api_key=api_key, base_url=pipeline.gateway_url) as own:
            own.segments.create(dataset, document, [{"content": f"The {word} stands by the river."}])

    with ThreadPoolExecutor(len(words)) as pool:
        list(pool.map(add, words))
    contents = [s.content for s in client.segments.list(dataset, document, limit=50).data]
    assert len(contents) == 3 + len(words)
    assert {c.split()[1] for c in contents[3:]} == set(words)
