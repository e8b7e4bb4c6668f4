"""The indexing estimate: extract and split without persisting anything; segments and tokens as
indexing would make them, the price for the dataset's model, a preview of the first segments."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from services.cli.main import SAMPLES, cli
from services.runtime.settings import Settings
from tests.support.gateway import Gateway

TEXT = "\n\n".join(
    f"Section {n}. Harbour pilots read the tides, the wind and the charts before every crossing {n}." for n in range(40)
)
CUSTOM = {"mode": "custom", "segmentation": {"separator": "\n\n", "max_tokens": 60, "chunk_overlap": 0}}


@pytest.fixture
def gateway(pipeline: Settings, request: pytest.FixtureRequest) -> Gateway:
    return Gateway(pipeline, tenant="estimate", dataset=request.node.name.replace("_", "-")[:60])


def estimate(gateway: Gateway, **body) -> dict:
    response = gateway.http.post(f"/v1/datasets/{gateway.dataset}/document/estimate", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_an_estimate_matches_indexing_and_persists_nothing(gateway: Gateway):
    answer = estimate(gateway, name="harbour.txt", text=TEXT, process_rule=CUSTOM)
    assert answer["total_price"] == 0 and answer["model"] == "all-minilm-l6-v2-int8"
    assert len(answer["preview"]) == 10 and answer["preview"][0]["content"].startswith("Section 0.")
    assert gateway.http.get(f"/v1/datasets/{gateway.dataset}/documents").status_code == 404  # not even the dataset

    accepted = gateway.create_text("harbour.txt", TEXT, process_rule=CUSTOM)
    state = gateway.wait(accepted["document_id"], accepted["revision"])
    assert answer["total_segments"] == state["segment_count"] > 10
    assert answer["tokens"] == state["token_count"]


def test_a_hosted_model_is_priced_from_the_table(gateway: Gateway):
    answer = estimate(gateway, name="harbour.txt", text=TEXT, embedding_model="cohere-embed-english-v3.0")
    assert answer["currency"] == "USD"
    assert answer["total_price"] == pytest.approx(answer["tokens"] * 0.10 / 1_000_000)


def test_a_hierarchical_preview_shows_children(gateway: Gateway):
    answer = estimate(gateway, name="harbour.txt", text=TEXT, process_rule={"mode": "hierarchical"})
    assert answer["preview"] and all(item["child_chunks"] for item in answer["preview"])


def test_a_file_is_estimated_like_an_upload_and_the_cli_agrees(gateway: Gateway):
    sample = SAMPLES / "hybrid-search.html"
    response = gateway.http.post(f"/v1/datasets/{gateway.dataset}/document/estimate",
                                 files={"file": (sample.name, sample.read_bytes())})
    assert response.status_code == 200, response.text
    by_gateway = response.json()
    assert by_gateway["total_segments"] > 0

    result = CliRunner().invoke(cli, ["estimate", str(sample), "--json"])
    assert result.exit_code == 0, result.output
    by_cli = orjson.loads(result.output)
    assert (by_cli["total_segments"], by_cli["tokens"]) == (by_gateway["total_segments"], by_gateway["tokens"])
