"""Embedding providers: Cohere through its real client against a local stand-in of its HTTP API,
and the local models that ship in PyPI packages."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from services.embedder.batching import token_budget_batches
from services.embedder.models import EmbeddingSettings, load_provider, local_models
from services.runtime.errors import DependencyUnavailable
from tests.support.cohere_standin import CohereStandIn, vector_for


def test_cohere_documents_and_queries_use_their_input_types():
    with CohereStandIn(dims=1024) as standin:
        model = load_provider("cohere-embed-english-v3.0", EmbeddingSettings(cohere_api_key="k", cohere_base_url=standin.url))
        assert (model.name, model.dims) == ("cohere-embed-english-v3.0", 1024)
        vectors = model.embed_documents(["alpha", "beta"])
        query = model.embed_query("alpha?")
    assert np.allclose(vectors[0], vector_for("alpha", 1024), atol=1e-6)
    assert np.allclose(query, vector_for("alpha?", 1024), atol=1e-6)
    first, second = standin.requests
    assert (first["input_type"], second["input_type"]) == ("search_document", "search_query")
    assert first["model"] == "embed-english-v3.0" and first["embedding_types"] == ["float"]
    assert first["auth"] == "Bearer k"


def test_cohere_rate_limit_is_an_outage_with_its_retry_after():
    with CohereStandIn() as standin:
        standin.rate_limited = 1
        model = load_provider("cohere-embed-english-v3.0", EmbeddingSettings(cohere_api_key="k", cohere_base_url=standin.url))
        with pytest.raises(DependencyUnavailable) as caught:
            model.embed_documents(["x"])
        assert caught.value.retry_after == 2.0
        assert len(standin.requests) == 1, "the client must not retry by itself"
        assert len(model.embed_documents(["x"])) == 1


def test_cohere_needs_a_key_and_a_known_model():
    with pytest.raises(ValueError, match="CO_API_KEY"):
        load_provider("cohere-embed-english-v3.0", EmbeddingSettings(cohere_api_key=""))
    with pytest.raises(ValueError, match="unknown embedding model .cohere-embed-nonsense"):
        load_provider("cohere-embed-nonsense", EmbeddingSettings(cohere_api_key="k"))
    with pytest.raises(ValueError, match="unknown embedding model"):
        load_provider("word2vec", EmbeddingSettings())


@pytest.mark.parametrize("model", local_models(), ids=lambda m: m.name)
def test_local_models_rank_the_paraphrase_first(model):
    documents = model.embed_documents(
        ["The cat sat on the warm windowsill.", "Quarterly revenue grew by eight percent.", "Rain is expected tomorrow."]
    )
    query = model.embed_query("a kitten resting by the window")
    assert np.asarray(documents).shape == (3, model.dims)
    assert np.allclose(np.linalg.norm(documents, axis=1), 1.0, atol=1e-3)
    assert int(np.argmax(np.asarray(documents) @ np.asarray(query))) == 0


def test_token_budget_batches():
    assert list(token_budget_batches([5, 5, 5, 20, 1], max_tokens=10, max_items=10)) == [[0, 1], [2], [3], [4]]
    assert list(token_budget_batches([1] * 5, max_tokens=100, max_items=2)) == [[0, 1], [2, 3], [4]]
    assert list(token_budget_batches([], 10, 10)) == []


def test_local_vectors_are_exact_float32_in_their_shortest_decimals():
    model = load_provider("all-minilm-l6-v2-int8", EmbeddingSettings())
    vector = model.embed_documents(["Seabirds nest on the cliffs."])[0]
    as_float32 = np.asarray(vector, dtype=np.float32)
    assert [float(str(x)) for x in as_float32] == vector  # e.g. -0.030274253, no float64 tail
    assert len(orjson.dumps(vector)) < 0.65 * len(orjson.dumps(as_float32.tolist()))
