"""Dify's current Knowledge API (2026): knowledge tags, the canonical update of a document by PATCH,
downloads of documents' originals (a signed link, a zip), 204 deletes, its error codes, and the
fields its answers carry now, each answer validated against Dify's response models
(tests/support/dify_shapes.py). Driven by dify-dataset-sdk where it has a method, else called as
Dify's own SDK calls (no release of dify-client on PyPI has its KnowledgeBaseClient)."""

from __future__ import annotations

import io
import time
import uuid
import zipfile

import httpx
import pytest
from dify_dataset_sdk import DifyDatasetClient
from dify_dataset_sdk._exceptions import DifyNotFoundError, DifyValidationError
from dify_dataset_sdk.documents.models import ProcessRule, ProcessRuleConfig, Segmentation

from services.gateway.api_keys import ApiKeys
from services.gateway.settings import GatewaySettings
from services.gateway.tenant_limits import TenantLimits
from services.runtime.redis_client import redis_client
from services.runtime.settings import Settings
from tests.support import dify_shapes as shapes
from tests.support.dify import completed
from tests.support.gateway import extra_gateway

RULE = ProcessRule(mode="custom", rules=ProcessRuleConfig(
    pre_processing_rules=[], segmentation=Segmentation(separator="###", max_tokens=100)))


def new_key(pipeline: Settings, **limits: int) -> str:
    tenant = f"current-{uuid.uuid4().hex[:8]}"
    if limits:
        TenantLimits(redis_client(pipeline), None, pipeline.keys, GatewaySettings()).set(tenant, **limits)
    return ApiKeys(redis_client(pipeline), pipeline.keys).create(tenant, "dify current")[0]


@pytest.fixture(scope="module")
def api_key(pipeline: Settings) -> str:
    return new_key(pipeline)


@pytest.fixture
def client(pipeline: Settings, api_key: str) -> DifyDatasetClient:
    with DifyDatasetClient(api_key=api_key, base_url=pipeline.gateway_url) as sdk:
        yield sdk


@pytest.fixture
def http(pipeline: Settings, api_key: str) -> httpx.Client:
    """Requests as Dify's own SDK (KnowledgeBaseClient) makes them."""
    with httpx.Client(base_url=pipeline.gateway_url, headers={"Authorization": f"Bearer {api_key}"},
                      timeout=60) as client:
        yield client


def dataset_list(http: httpx.Client, **params) -> shapes.DatasetList:
    response = http.get("/v1/datasets", params=params)
    assert response.status_code == 200, response.text
    return shapes.DatasetList.model_validate(response.json())


def test_tags_are_made_bound_listed_filtered_by_unbound_and_deleted(pipeline: Settings, client: DifyDatasetClient,
                                                                     http: httpx.Client):
    suffix = uuid.uuid4().hex[:6]
    birds, beasts = (client.tags.create(f"{name} {suffix}") for name in ("birds", "beasts"))
    with pytest.raises(DifyValidationError):
        client.tags.create(f"birds {suffix}")  # a name names one tag
    marsh, forest = (client.datasets.create(name=f"{name} {suffix}") for name in ("Marsh", "Forest"))
    client.tags.bind_to_dataset(marsh.id, [birds.id, beasts.id])
    bound = http.post("/v1/datasets/tags/binding", json={"tag_ids": [birds.id], "target_id": forest.id})
    assert bound.status_code == 204 and not bound.content

    listed = http.get("/v1/datasets/tags").json()
    counts = {tag.name: tag.binding_count for tag in map(shapes.Tag.model_validate, listed)}
    assert counts == {f"birds {suffix}": "2", f"beasts {suffix}": "1"}
    assert {t["type"] for t in listed} == {"knowledge"}
    assert [t.name for t in client.tags.get_dataset_tags(marsh.id)] == [f"beasts {suffix}", f"birds {suffix}"]
    on_forest = shapes.BoundTags.model_validate(http.get(f"/v1/datasets/{forest.id}/tags").json())
    assert [(t.id, t.name) for t in on_forest.data] == [(birds.id, f"birds {suffix}")] and on_forest.total == 1

    assert {d.id for d in dataset_list(http, tag_ids=[beasts.id]).data} == {marsh.id}
    both = dataset_list(http, tag_ids=[birds.id, beasts.id])
    assert {d.id for d in both.data} == {marsh.id, forest.id} and both.total == 2
    assert [t.name for t in {d.id: d for d in both.data}[marsh.id].tags] == [f"beasts {suffix}", f"birds {suffix}"]
    assert [d["id"] for d in client.datasets.list(tag_ids=[beasts.id]).data] == [marsh.id]

    renamed = shapes.Tag.model_validate(http.patch("/v1/datasets/tags", json={
        "tag_id": beasts.id, "name": f"mammals {suffix}"}).json())
    assert (renamed.name, renamed.binding_count) == (f"mammals {suffix}", "1")
    assert client.tags.update(beasts.id, f"beasts {suffix}").name == f"beasts {suffix}"
    taken = http.patch("/v1/datasets/tags", json={"tag_id": beasts.id, "name": f"birds {suffix}"})
    assert taken.status_code == 400 and taken.json()["message"] == "Tag name already exists"

    client.tags.unbind_from_dataset(marsh.id, beasts.id)  # the older single tag_id
    unbound = http.post("/v1/datasets/tags/unbinding", json={"tag_ids": [birds.id], "target_id": forest.id})
    assert unbound.status_code == 204 and not unbound.content
    assert {d.id for d in dataset_list(http, tag_ids=[birds.id]).data} == {marsh.id}
    assert dataset_list(http, tag_ids=[beasts.id]).data == []

    # Refused with the reason: an unknown tag, an unknown dataset, no tag named.
    assert http.post("/v1/datasets/tags/binding", json={"tag_ids": [str(uuid.uuid4())],
                                                        "target_id": marsh.id}).status_code == 404
    assert http.post("/v1/datasets/tags/binding", json={"tag_ids": [birds.id],
                                                        "target_id": str(uuid.uuid4())}).status_code == 404
    empty = http.post("/v1/datasets/tags/unbinding", json={"tag_ids": [], "target_id": marsh.id})
    assert empty.status_code == 400 and empty.json()["code"] == "invalid_param"
    with pytest.raises(DifyNotFoundError):
        client.tags.update(str(uuid.uuid4()), "nothing")

    # A tenant never sees, renames or binds another's tags.
    with httpx.Client(base_url=pipeline.gateway_url, headers={"Authorization": f"Bearer {new_key(pipeline)}"}) as other:
        assert other.get("/v1/datasets/tags").json() == []
        own = other.post("/v1/datasets", json={"name": "Elsewhere"}).json()["id"]
        assert other.post("/v1/datasets/tags/binding", json={"tag_ids": [birds.id], "target_id": own}).status_code == 404
        assert other.patch("/v1/datasets/tags", json={"tag_id": birds.id, "name": "mine"}).status_code == 404
        assert other.post("/v1/datasets/tags/binding", json={"tag_ids": [birds.id],
                                                             "target_id": marsh.id}).status_code == 404

    # A deleted tag leaves its datasets; a deleted dataset leaves its tags.
    client.tags.delete(birds.id)
    assert client.tags.get_dataset_tags(marsh.id) == [] and dataset_list(http, tag_ids=[birds.id]).data == []
    client.tags.bind_to_dataset(forest.id, [beasts.id])
    client.datasets.delete(forest.id)
    assert [(t["name"], t["binding_count"]) for t in http.get("/v1/datasets/tags").json()] == [(f"beasts {suffix}", "0")]


def test_a_tenant_has_at_most_its_limit_of_tags(pipeline: Settings):
    key = new_key(pipeline, tags=2)
    with DifyDatasetClient(api_key=key, base_url=pipeline.gateway_url) as limited:
        limited.tags.create("one")
        limited.tags.create("two")
        with httpx.Client(base_url=pipeline.gateway_url, headers={"Authorization": f"Bearer {key}"}) as http:
            refused = http.post("/v1/datasets/tags", json={"name": "three"})
            shown = http.get("/v1/ops/overview").json()["limits"]["tags"]
        assert refused.status_code == 403 and refused.json()["limit"] == "tags"
        assert shown == {"limit": 2, "used": 2}
        assert [t.name for t in limited.tags.list()] == ["two", "one"]  # newest first, as Dify lists them


def test_a_document_is_updated_by_patch_and_its_originals_downloaded(pipeline: Settings, client: DifyDatasetClient,
                                                                     http: httpx.Client, tmp_path):
    dataset = client.datasets.create(name=f"Originals {uuid.uuid4().hex[:6]}")
    upload = tmp_path / "harbour.md"
    upload.write_bytes("# Harbour\n\nThe pilot boat leaves at dawn.###The ferry docks at noon.\n".encode())
    by_file = client.documents.create_by_file(dataset.id, upload, process_rule=RULE)
    document = by_file.document.id
    completed(client, dataset.id, by_file.batch)

    # The canonical update: PATCH, multipart, a new file.
    upload.write_bytes(b"# Harbour\n\nThe pilot boat leaves at dawn.###The ferry docks at noon.###Gulls follow it.\n")
    with upload.open("rb") as f:
        patched = http.patch(f"/v1/datasets/{dataset.id}/documents/{document}", files={"file": ("harbour.md", f)})
    assert patched.status_code == 200, patched.text
    answer = shapes.DocumentAndBatch.model_validate(patched.json())
    assert answer.document.id == document and answer.document.name == "harbour.md"
    [status] = completed(client, dataset.id, answer.batch)
    assert status.total_segments == 3
    # Settings alone (no file): the same file processed again under them.
    whole = '{"process_rule": {"mode": "custom", "rules": {"segmentation": {"separator": "@@@", "max_tokens": 500}}}}'
    resplit = http.patch(f"/v1/datasets/{dataset.id}/documents/{document}", data={"data": whole})
    assert resplit.status_code == 200, resplit.text
    assert completed(client, dataset.id, resplit.json()["batch"])[0].total_segments == 1
    # The deprecated spelling stays.
    again = client.documents.update_by_file(dataset.id, document, upload, process_rule=RULE)
    completed(client, dataset.id, again.batch)

    link = shapes.Url.model_validate(http.get(f"/v1/datasets/{dataset.id}/documents/{document}/download").json())
    fetched = httpx.get(link.url)  # no API key: the signature is the permission
    assert fetched.status_code == 200 and fetched.content == upload.read_bytes()
    assert "harbour.md" in fetched.headers["content-disposition"]
    assert httpx.get(link.url[:-3] + ("AAA" if not link.url.endswith("AAA") else "BBB")).status_code == 403

    texts = [client.documents.create_by_text(dataset.id, name=name, text=text) for name, text in
             (("notes.txt", "Tide tables for the week."), ("notes.txt", "Moorings are free on Sundays."))]
    for created in texts:
        completed(client, dataset.id, created.batch)
    as_text = httpx.get(http.get(f"/v1/datasets/{dataset.id}/documents/{texts[0].document.id}/download").json()["url"])
    assert as_text.text == "Tide tables for the week." and as_text.headers["content-type"].startswith("text/plain")

    ids = [document] + [created.document.id for created in texts]
    zipped = http.post(f"/v1/datasets/{dataset.id}/documents/download-zip", json={"document_ids": ids})
    assert zipped.status_code == 200 and zipped.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    assert members == {"harbour.md": upload.read_bytes(), "notes.txt": b"Tide tables for the week.",
                       "notes (2).txt": b"Moorings are free on Sundays."}
    too_many = http.post(f"/v1/datasets/{dataset.id}/documents/download-zip",
                         json={"document_ids": [str(uuid.uuid4()) for _ in range(101)]})
    assert too_many.status_code == 400
    missing = http.post(f"/v1/datasets/{dataset.id}/documents/download-zip", json={"document_ids": [str(uuid.uuid4())]})
    assert missing.status_code == 404

    # A link outlives no change of the content.
    upload.write_bytes(b"Replaced entirely.")
    completed(client, dataset.id, client.documents.update_by_file(dataset.id, document, upload).batch)
    assert httpx.get(link.url).status_code == 404

    deleted = http.delete(f"/v1/datasets/{dataset.id}/documents/{texts[1].document.id}")
    assert deleted.status_code == 204 and not deleted.content and int(deleted.headers["X-Revision"]) > 0


def test_a_download_link_expires_and_a_zip_is_bounded(pipeline: Settings, client: DifyDatasetClient, api_key: str):
    dataset = client.datasets.create(name=f"Expiring {uuid.uuid4().hex[:6]}")
    created = [client.documents.create_by_text(dataset.id, name=f"{n}.txt", text="Gone in a second.")
               for n in range(2)]
    ids = [c.document.id for c in created]
    with extra_gateway(INDEXFLOW_GATEWAY_DOWNLOAD_LINK_SECONDS="1", INDEXFLOW_GATEWAY_MAX_ZIP_BYTES="20") as url:
        http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"})
        link = http.get(f"/v1/datasets/{dataset.id}/documents/{ids[0]}/download").json()["url"]
        assert httpx.get(link).text == "Gone in a second."
        time.sleep(2.1)
        expired = httpx.get(link)
        one = http.post(f"/v1/datasets/{dataset.id}/documents/download-zip", json={"document_ids": ids[:1]})
        both = http.post(f"/v1/datasets/{dataset.id}/documents/download-zip", json={"document_ids": ids})
    assert expired.status_code == 403 and expired.json()["message"] == "The download link is invalid or has expired."
    assert one.status_code == 200 and both.status_code == 413 and "INDEXFLOW_GATEWAY_MAX_ZIP_BYTES" in both.text


def test_answers_carry_dify_s_current_fields_with_true_values(client: DifyDatasetClient, http: httpx.Client):
    dataset = client.datasets.create(name=f"Fields {uuid.uuid4().hex[:6]}")
    created = client.documents.create_by_text(dataset.id, name="animals.txt", process_rule=RULE,
                                              text="The heron waits in the reeds.###The otter dives under the ice.")
    completed(client, dataset.id, created.batch)
    document = created.document.id

    segments = shapes.SegmentList.model_validate(http.get(f"/v1/datasets/{dataset.id}/documents/{document}/segments")
                                                 .json())
    assert [(s.attachments, s.summary) for s in segments.data] == [([], None), ([], None)]
    words = sum(s.word_count for s in segments.data)
    assert words == 12

    detail = shapes.DocumentDetail.model_validate(http.get(f"/v1/datasets/{dataset.id}/documents/{document}").json())
    assert (detail.segment_count, detail.average_segment_length) == (2, 6)
    assert (detail.need_summary, detail.summary_index_status) == (False, None)
    [listed] = shapes.DocumentList.model_validate(http.get(f"/v1/datasets/{dataset.id}/documents").json()).data
    assert (listed.word_count, listed.need_summary, listed.summary_index_status) == (words, False, None)

    shown = shapes.Dataset.model_validate(http.get(f"/v1/datasets/{dataset.id}").json())
    assert (shown.word_count, shown.chunk_structure, shown.doc_form) == (words, "text_model", "text_model")
    assert (shown.runtime_mode, shown.pipeline_id, shown.is_published, shown.summary_index_setting,
            shown.icon_info) == ("general", None, False, None, None)
    assert {d.id: d.word_count for d in dataset_list(http).data}[dataset.id] == words
    patched = http.patch(f"/v1/datasets/{dataset.id}", json={"description": "herons and otters"})
    assert shapes.DatasetWithMembers.model_validate(patched.json()).partial_member_list == []

    # Edited segments are the document's content now: it has no original left to download.
    first = segments.data[0]
    client.segments.update(dataset.id, document, first.id, {"content": "The heron waits."})
    gone = http.get(f"/v1/datasets/{dataset.id}/documents/{document}/download")
    assert gone.status_code == 404 and "segments were edited" in gone.json()["message"]

    # Dify's error codes for an unknown status action and an unknown metadata mode.
    action = http.patch(f"/v1/datasets/{dataset.id}/documents/status/hide", json={"document_ids": [document]})
    assert action.status_code == 400 and action.json()["code"] == "invalid_action"
    mode = http.get(f"/v1/datasets/{dataset.id}/documents/{document}", params={"metadata": "some"})
    assert mode.status_code == 400 and mode.json()["code"] == "invalid_metadata"
