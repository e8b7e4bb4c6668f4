"""Every dataset is searched with its own embedding model: the query is embedded with the model its
documents were indexed with, and a search across datasets of different models fuses per model."""

from __future__ import annotations

import pytest

from services.runtime.settings import Settings
from tests.support.gateway import Gateway
from tests.test_pipeline_e2e import ALPHA, BETA

OTHER_MODEL = "use-multilingual-v3"  # not the deployment default


@pytest.fixture
def other(pipeline: Settings) -> Gateway:
    return Gateway(pipeline, tenant="models", dataset="on-other")


@pytest.fixture
def default(pipeline: Settings) -> Gateway:
    return Gateway(pipeline, tenant="models", dataset="on-default")


def test_a_dataset_is_searched_with_the_model_it_was_indexed_with(other: Gateway, default: Gateway):
    first = other.create_text("aurora.txt", ALPHA, embedding_model=OTHER_MODEL)
    # Later documents of the dataset inherit its model without naming it.
    second = other.create_text("bread.txt", BETA)
    assert other.wait(first["document_id"], first["revision"])["status"] == "completed"
    assert other.wait(second["document_id"], second["revision"])["status"] == "completed"

    [hit] = other.search("green lights in the polar night sky", mode="semantic", top_k=1)
    assert hit["document_id"] == first["document_id"]
    [hit] = other.search("fermenting dough with wild yeast", mode="semantic", top_k=1)
    assert hit["document_id"] == second["document_id"]

    other = default.create_text("bread.txt", BETA)
    assert default.wait(other["document_id"], other["revision"])["status"] == "completed"
    # Across datasets of two models: each model's kNN ranking, fused.
    response = default.http.post("/v1/retrieve", json={"query": "wild yeast ferments dough", "mode": "semantic",
                                                       "top_k": 5})
    assert response.status_code == 200, response.text
    found = {(r["dataset_id"], r["document_id"]) for r in response.json()["records"]}
    assert {("on-other", second["document_id"]), ("on-default", other["document_id"])} <= found


def test_a_document_naming_another_model_than_its_dataset_is_refused(other: Gateway):
    response = other.http.post(f"/v1/datasets/{other.dataset}/document/create-by-text",
                                json={"name": "x.txt", "text": "x", "embedding_model": "all-minilm-l6-v2-int8"})
    assert response.status_code == 409 and OTHER_MODEL in response.text, response.text
