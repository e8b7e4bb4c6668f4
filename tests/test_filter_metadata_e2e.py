"""A filtered search checks the metadata of every document of the datasets it searches: that read
costs a Redis round trip and a JSON parse per document, never a model built (and validated) per
document, which was most of a filtered search's CPU in the gateway and starved other tenants."""

from __future__ import annotations

import uuid

import pytest

from schemas.codec import Codec
from services.gateway.routes.search import documents_meeting
from services.gateway.services import Services
from services.gateway.settings import GatewaySettings
from services.runtime.settings import Settings
from services.search.metadata_filter import Condition, MetadataCondition
from tests.support.gateway import Gateway

DOCUMENTS = 12


@pytest.fixture(scope="module")
def written(pipeline: Settings) -> tuple[Gateway, str, list[str]]:
    tenant = f"fm-{uuid.uuid4().hex[:8]}"
    gateway = Gateway(pipeline, tenant=tenant, dataset="filtered")
    created = [gateway.create_text(f"doc-{n}.txt", f"harbour entry {n}", indexing_technique="economy",
                                   metadata={"shelf": f"s{n % 3}", "year": 2000 + n})
               for n in range(DOCUMENTS)]
    for document in created:
        gateway.wait(document["document_id"], document["revision"])
    deleted = created[-1]["document_id"]
    gateway.wait(deleted, gateway.delete(deleted)["revision"])
    return gateway, tenant, [d["document_id"] for d in created]


def test_documents_are_checked_without_a_model_built_per_document(
        pipeline: Settings, written: tuple[Gateway, str, list[str]], monkeypatch: pytest.MonkeyPatch):
    _, tenant, ids = written
    decoded: list[str] = []
    real_decode = Codec.decode
    monkeypatch.setattr(Codec, "decode", lambda codec, raw: decoded.append(codec.name) or real_decode(codec, raw))
    condition = MetadataCondition(logical_operator="and", conditions=[
        Condition(name="shelf", comparison_operator="in", value=["s0", "s1"]),
        Condition(name="year", comparison_operator="<", value=2010),
    ])
    allowed, rejected = documents_meeting(Services(pipeline, GatewaySettings()), tenant, "filtered", condition)
    live = ids[:-1]  # the last one deleted
    assert allowed == {ids[n] for n in range(len(live)) if n % 3 != 2 and n < 10}
    assert rejected == set(live) - allowed
    assert decoded == []


def test_built_in_fields_are_checked_as_before(pipeline: Settings, written: tuple[Gateway, str, list[str]]):
    gateway, tenant, ids = written
    assert gateway.http.post("/v1/datasets/filtered/metadata/built-in/enable").status_code in (200, 204)
    try:
        condition = MetadataCondition(conditions=[
            Condition(name="document_name", comparison_operator="is", value="doc-4.txt"),
            Condition(name="upload_date", comparison_operator=">", value=1_000_000_000),
            Condition(name="uploader", comparison_operator="is", value="api"),
        ])
        allowed, _ = documents_meeting(Services(pipeline, GatewaySettings()), tenant, "filtered", condition)
        assert allowed == {ids[4]}
    finally:
        gateway.http.post("/v1/datasets/filtered/metadata/built-in/disable")
