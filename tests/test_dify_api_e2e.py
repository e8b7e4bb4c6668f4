"""Dify's Knowledge API, driven by a Dify client from the package registry (dify-dataset-sdk, whose
pydantic models parse every answer into Dify's shapes): datasets, documents by text and by file,
indexing status polled to completed, lists, one document, errors, deletes."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from dify_dataset_sdk import DifyDatasetClient
from dify_dataset_sdk._exceptions import DifyConflictError, DifyNotFoundError, DifyValidationError
from dify_dataset_sdk.datasets.models import Dataset, RetrievalModel
from dify_dataset_sdk.documents.models import Document, ProcessRule, ProcessRuleConfig, Segmentation

from services.gateway.api_keys import ApiKeys
from services.runtime.redis_client import redis_client
from services.runtime.settings import Settings
from tests.support.dify import completed
from tests.support.gateway import extra_gateway

THREE_PARAGRAPHS = "The heron waits in the reeds.###The otter dives under the ice.###The kestrel hovers above the field."


@pytest.fixture(scope="module")
def tenant_key(pipeline: Settings) -> tuple[str, str]:
    tenant = f"dify-{uuid.uuid4().hex[:8]}"
    return tenant, ApiKeys(redis_client(pipeline), pipeline.keys).create(tenant, "dify sdk")[0]


@pytest.fixture
def client(pipeline: Settings, tenant_key) -> DifyDatasetClient:
    with DifyDatasetClient(api_key=tenant_key[1], base_url=pipeline.gateway_url) as sdk:
        yield sdk


def test_a_dify_client_runs_the_dataset_and_document_flow(client: DifyDatasetClient, tmp_path):
    name = f"Field notes {uuid.uuid4().hex[:6]}"
    dataset = client.datasets.create(name=name, description="birds and beasts", indexing_technique="high_quality")
    assert str(uuid.UUID(dataset.id)) == dataset.id  # Dify's routes take UUIDs
    assert dataset.name == name and dataset.document_count == 0 and dataset.embedding_model
    with pytest.raises(DifyConflictError):
        client.datasets.create(name=name)
    listed = [Dataset(**d) for d in client.datasets.list(keyword="Field notes").data]  # each in Dify's shape
    assert dataset.id in {d.id for d in listed}

    # Dify's custom rule: its settings under process_rule.rules, honoured (three segments, not one).
    rule = ProcessRule(mode="custom", rules=ProcessRuleConfig(
        pre_processing_rules=[], segmentation=Segmentation(separator="###", max_tokens=100)))
    by_text = client.documents.create_by_text(dataset.id, name="animals.txt", text=THREE_PARAGRAPHS,
                                              indexing_technique="high_quality", process_rule=rule)
    assert by_text.document.indexing_status == "waiting" and by_text.document.position == 1
    assert str(uuid.UUID(by_text.document.id)) == by_text.document.id  # a UUID in its canonical form, as Dify's
    [status] = completed(client, dataset.id, by_text.batch)
    assert status.id == by_text.document.id and status.total_segments == status.completed_segments == 3
    assert status.completed_at is not None and status.processing_started_at is not None
    segments = client.segments.list(dataset.id, by_text.document.id).data
    assert [(seg.position, seg.content.split()[1]) for seg in segments] == [(1, "heron"), (2, "otter"), (3, "kestrel")]
    assert client.segments.list(dataset.id, by_text.document.id, keyword="OTTER").data == [segments[1]]
    assert client.segments.get(dataset.id, by_text.document.id, segments[2].id)["data"]["content"] == segments[2].content

    upload = tmp_path / "lighthouse.md"
    upload.write_text("# Lighthouse\n\nThe keeper trims the wick every evening before the fog rolls in.\n")
    by_file = client.documents.create_by_file(dataset.id, upload)
    assert by_file.document.name == "lighthouse.md" and by_file.document.position == 2
    completed(client, dataset.id, by_file.batch)

    page = client.documents.list(dataset.id, page=1, limit=1)
    assert page.total == 2 and page.has_more and page.page == 1
    assert [Document(**d).id for d in page.data] == [by_file.document.id]  # newest first
    assert [d["name"] for d in client.documents.list(dataset.id, keyword="light").data] == ["lighthouse.md"]
    one = client.documents.get(dataset.id, by_text.document.id)
    assert one.indexing_status == "completed" and one.display_status == "available" and one.tokens > 0

    # An update that names no rule keeps the document's (as in Dify): still split at "###".
    updated = client.documents.update_by_text(dataset.id, by_text.document.id, name="animals.txt",
                                              text="The heron waits.###The otter dives.")
    [status] = completed(client, dataset.id, updated.batch)
    assert status.total_segments == 2

    assert client.datasets.get(dataset.id).document_count == 2
    client.documents.delete(dataset.id, by_file.document.id)
    deadline = time.monotonic() + 60
    while client.datasets.get(dataset.id).document_count != 1:
        assert time.monotonic() < deadline, "the deleted document is still counted"
        time.sleep(0.3)
    with pytest.raises(DifyNotFoundError):
        client.documents.get(dataset.id, by_file.document.id)
    with pytest.raises(DifyNotFoundError):
        client.documents.delete(dataset.id, by_file.document.id)

    renamed = client.datasets.update(dataset.id, name=f"{name} (2)")
    assert renamed.name == f"{name} (2)"
    client.datasets.delete(dataset.id)
    with pytest.raises(DifyNotFoundError):
        client.datasets.get(dataset.id)


def test_what_indexflow_cannot_do_is_refused_up_front(client: DifyDatasetClient):
    dataset = client.datasets.create(name=f"Refusals {uuid.uuid4().hex[:6]}")
    with pytest.raises(DifyValidationError, match="qa_model"):
        client.documents.create_by_text(dataset.id, name="qa.txt", text="Q and A", doc_form="qa_model")
    with pytest.raises(DifyValidationError, match="unknown embedding model"):
        client.documents.create_by_text(dataset.id, name="m.txt", text="text", embedding_model="text-embedding-3-small",
                                        embedding_model_provider="langgenius/openai/openai")
    with pytest.raises(DifyNotFoundError):
        client.documents.get_indexing_status(dataset.id, "no-such-batch")
    with pytest.raises(DifyNotFoundError):
        client.datasets.get(str(uuid.uuid4()))
    models = client.models.list_embedding_models().data
    assert any(m["model"] == dataset.embedding_model for p in models for m in p["models"])


def test_a_disabled_or_archived_document_is_listed_but_never_found(client: DifyDatasetClient, pipeline: Settings,
                                                                   tenant_key):
    dataset = client.datasets.create(name=f"Hidden {uuid.uuid4().hex[:6]}")

    def listed_as(status: str) -> list[str]:
        response = httpx.get(f"{pipeline.gateway_url}/v1/datasets/{dataset.id}/documents", params={"status": status},
                             headers={"Authorization": f"Bearer {tenant_key[1]}"})
        return [d["id"] for d in response.json()["data"]]

    created = client.documents.create_by_text(dataset.id, name="secret.txt", text="The lighthouse keeper hums.")
    completed(client, dataset.id, created.batch)

    def found() -> list[str]:
        query = RetrievalModel(search_method="hybrid_search", reranking_enable=False, top_k=3,
                               score_threshold_enabled=False)
        return [r.segment.document_id for r in client.datasets.retrieve(dataset.id, "lighthouse keeper",
                                                                          retrieval_model=query).records]

    assert found() == [created.document.id]
    for hide, show, word in (("disable", "enable", "disabled"), ("archive", "un_archive", "archived")):
        assert client.documents.batch_update_status(dataset.id, hide, [created.document.id]) == {"result": "success"}
        assert found() == []
        shown = client.documents.get(dataset.id, created.document.id)
        assert shown.display_status == word and (shown.enabled is False or shown.archived is True)
        assert (listed_as(word), listed_as("available")) == ([created.document.id], [])
        client.documents.batch_update_status(dataset.id, show, [created.document.id])
        assert found() == [created.document.id]
        assert (listed_as(word), listed_as("available")) == ([], [created.document.id])
        assert client.documents.get(dataset.id, created.document.id).display_status == "available"


def test_metadata_fields_values_and_filters(client: DifyDatasetClient):
    dataset = client.datasets.create(name=f"Authors {uuid.uuid4().hex[:6]}")
    batch = [client.documents.create_by_text(dataset.id, name=f"{who}.txt", text=f"{who} writes about tides.")
             for who in ("ann", "bob")]
    for created in batch:
        completed(client, dataset.id, created.batch)
    ann, bob = (created.document.id for created in batch)
    author = client.metadata.create(dataset.id, field_type="string", name="author")
    year = client.metadata.create(dataset.id, field_type="number", name="year")
    with pytest.raises(DifyValidationError, match="already exists"):
        client.metadata.create(dataset.id, field_type="string", name="author")
    client.metadata.update_document_metadata(dataset.id, [
        {"document_id": ann, "metadata_list": [{"id": author.id, "name": "author", "value": "Ann"},
                                               {"id": year.id, "name": "year", "value": "2021"}]},
        {"document_id": bob, "metadata_list": [{"id": author.id, "name": "author", "value": "Bob"},
                                               {"id": year.id, "name": "year", "value": "2019"}]},
    ])
    counts = client._base.get(f"/v1/datasets/{dataset.id}/metadata")["doc_metadata"]
    assert {f["name"]: f["count"] for f in counts} == {"author": 2, "year": 2}

    def found(conditions: list[dict]) -> set[str]:
        query = RetrievalModel(search_method="full_text_search", reranking_enable=False, top_k=5,
                               score_threshold_enabled=False, metadata_filtering_conditions={
                                   "logical_operator": "and", "conditions": conditions})
        return {r.segment.document.name for r in client.datasets.retrieve(dataset.id, "tides", retrieval_model=query).records}

    assert found([{"name": "year", "comparison_operator": "≥", "value": 2020}]) == {"ann.txt"}
    assert found([{"name": "author", "comparison_operator": "start with", "value": "B"}]) == {"bob.txt"}

    def detail(document_id: str) -> dict:
        return client._base.get(f"/v1/datasets/{dataset.id}/documents/{document_id}")

    before = detail(ann)["revision"]
    client.metadata.update(dataset.id, author.id, name="writer")  # a new revision of each document that has it
    assert {m["name"] for m in detail(ann)["doc_metadata"]} == {"writer", "year"}
    deadline = time.monotonic() + 60
    while not ((now := detail(ann))["revision"] > before and now["status"] == "completed"):
        assert time.monotonic() < deadline, f"the renamed field's revision did not complete: {now}"
        time.sleep(0.3)
    # An update of the text (Dify's body has no metadata) keeps the document's values.
    completed(client, dataset.id, client.documents.update_by_text(
        dataset.id, ann, name="ann.txt", text="Ann writes about tides and currents.").batch)
    assert {m["name"]: m["value"] for m in detail(ann)["doc_metadata"]} == {"writer": "Ann", "year": "2021"}
    client.metadata.delete(dataset.id, year.id)
    assert [f.name for f in client.metadata.list(dataset.id).doc_metadata] == ["writer"]
    assert {m["name"] for m in detail(bob)["doc_metadata"]} == {"writer"}
    assert found([{"name": "writer", "comparison_operator": "is", "value": "Ann"}]) == {"ann.txt"}


def test_concurrent_partial_metadata_updates_of_one_document_all_land(pipeline: Settings, tenant_key,
                                                                     client: DifyDatasetClient):
    dataset = client.datasets.create(name=f"Tags {uuid.uuid4().hex[:6]}")
    created = client.documents.create_by_text(dataset.id, name="tags.txt", text="Tags on a page.")
    completed(client, dataset.id, created.batch)
    fields = [client.metadata.create(dataset.id, field_type="string", name=f"tag{n}") for n in range(6)]

    def tag(field) -> None:  # raw, as the SDK's model leaves partial_update out
        with DifyDatasetClient(api_key=tenant_key[1], base_url=pipeline.gateway_url) as own:
            own._base.post(f"/v1/datasets/{dataset.id}/documents/metadata", json={"operation_data": [
                {"document_id": created.document.id, "partial_update": True,
                 "metadata_list": [{"id": field.id, "name": field.name, "value": "yes"}]}]})

    with ThreadPoolExecutor(len(fields)) as pool:
        list(pool.map(tag, fields))
    detail = client._base.get(f"/v1/datasets/{dataset.id}/documents/{created.document.id}")
    assert {m["name"] for m in detail["doc_metadata"]} == {f.name for f in fields}  # none merged over a stale copy


def test_built_in_fields_carry_each_document_s_values_when_switched_on(client: DifyDatasetClient):
    dataset = client.datasets.create(name=f"Built-in {uuid.uuid4().hex[:6]}")
    before = int(time.time())
    created = client.documents.create_by_text(dataset.id, name="tides.txt", text="The tide turns at noon.")
    completed(client, dataset.id, created.batch)
    client.documents.create_by_text(dataset.id, name="moon.txt", text="The moon pulls the tide.")

    def values() -> dict:
        detail = client._base.get(f"/v1/datasets/{dataset.id}/documents/{created.document.id}")
        return {m["name"]: m["value"] for m in detail["doc_metadata"]}

    def found(name: str) -> dict[str, dict]:
        query = RetrievalModel(search_method="full_text_search", reranking_enable=False, top_k=5,
                               score_threshold_enabled=False, metadata_filtering_conditions={
                                   "logical_operator": "and",
                                   "conditions": [{"name": "document_name", "comparison_operator": "is", "value": name}]})
        records = client.datasets.retrieve(dataset.id, "tide", retrieval_model=query).records
        return {r.segment.document.name: r.segment.document.doc_metadata for r in records}

    assert values() == {} and found("tides.txt") == {}  # off: no such field
    client.metadata.toggle_built_in(dataset.id, "enable")
    first = values()
    assert first["document_name"] == "tides.txt" and first["source"] == "file_upload" and first["uploader"]
    assert before - 1 <= first["upload_date"] <= first["last_update_date"] <= time.time() + 1
    assert found("tides.txt") == {"tides.txt": first}  # the records carry them too

    time.sleep(1.1)  # the dates are in seconds
    completed(client, dataset.id, client.documents.update_by_text(
        dataset.id, created.document.id, name="tides.txt", text="The tide turns at one.").batch)
    after = values()
    assert after["upload_date"] == first["upload_date"] and after["last_update_date"] > first["last_update_date"]
    client.metadata.toggle_built_in(dataset.id, "disable")
    assert values() == {}


def test_hierarchical_full_doc_parent_mode_is_taken(client: DifyDatasetClient):
    dataset = client.datasets.create(name=f"Parents {uuid.uuid4().hex[:6]}")
    rule = ProcessRule(mode="hierarchical", rules=ProcessRuleConfig(
        pre_processing_rules=[], segmentation=Segmentation(separator="\n\n", max_tokens=500),
        parent_mode="full-doc"))
    created = client.documents.create_by_text(dataset.id, name="whole.txt", text="One.\nTwo.\nThree.",
                                              doc_form="hierarchical_model", process_rule=rule)
    assert created.document.doc_form == "hierarchical_model"
    completed(client, dataset.id, created.batch)
    [whole] = client.segments.list(dataset.id, created.document.id).data  # the whole document, one parent
    raw = client.segments.get(dataset.id, created.document.id, whole.id)["data"]
    assert "One." in whole.content and "Three." in whole.content and len(raw["child_chunks"]) >= 1


def test_errors_come_in_dify_s_shape_and_a_key_is_required(pipeline: Settings, tenant_key):
    with extra_gateway(INDEXFLOW_AUTH="api_keys") as url:
        anonymous = httpx.get(f"{url}/v1/datasets")
        assert anonymous.status_code == 401
        assert anonymous.json()["code"] == "unauthorized" and anonymous.json()["status"] == 401
        wrong = httpx.get(f"{url}/v1/datasets", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["message"] == "Access token is invalid"
        keyed = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tenant_key[1]}"})
        missing = keyed.get(f"/v1/datasets/{uuid.uuid4()}")
        assert missing.status_code == 404 and missing.json() == {
            "code": "not_found", "message": "Dataset not found.", "status": 404, "detail": "Dataset not found."}
        invalid = keyed.post("/v1/datasets", json={"name": ""})
        assert invalid.status_code == 400 and invalid.json()["code"] == "invalid_param"


def test_the_underscore_spellings_of_dify_s_older_clients(pipeline: Settings, tenant_key, tmp_path):
    """Dify's own Python SDK (KnowledgeBaseClient) writes documents through the underscore routes."""
    http = httpx.Client(base_url=pipeline.gateway_url, headers={"Authorization": f"Bearer {tenant_key[1]}"})
    dataset = http.post("/v1/datasets", json={"name": f"Underscores {uuid.uuid4().hex[:6]}"}).json()["id"]
    by_text = http.post(f"/v1/datasets/{dataset}/document/create_by_text",
                        json={"name": "a.txt", "text": "alpha", "indexing_technique": "high_quality"})
    assert by_text.status_code == 200 and by_text.json()["document"]["name"] == "a.txt"
    document = by_text.json()["document"]["id"]
    updated = http.post(f"/v1/datasets/{dataset}/documents/{document}/update_by_text", json={"name": "a.txt", "text": "beta"})
    assert updated.status_code == 200 and updated.json()["document"]["id"] == document
    upload = tmp_path / "b.txt"
    upload.write_text("gamma")
    with upload.open("rb") as f:
        by_file = http.post(f"/v1/datasets/{dataset}/document/create_by_file", files={"file": ("b.txt", f)},
                            data={"data": '{"indexing_technique": "high_quality"}'})
    assert by_file.status_code == 200 and by_file.json()["document"]["name"] == "b.txt"
    with upload.open("rb") as f:
        replaced = http.post(f"/v1/datasets/{dataset}/documents/{by_file.json()['document']['id']}/update_by_file",
                             files={"file": ("b.txt", f)})
    assert replaced.status_code == 200
