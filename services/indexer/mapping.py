"""Chunk indices: one per embedding model and dataset. Per model, so datasets with different models
never share a vector field (economy documents, no vectors, have a BM25-only one); per dataset, so
BM25 scores a dataset's chunks with that dataset's own term statistics (Elasticsearch takes them
from the indices searched, not from what a filter leaves; a dataset among many others' would be
scored by theirs), and a search or refresh of one dataset touches its own chunks only."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

from elasticsearch import BadRequestError, Elasticsearch

BM25_ONLY = "bm25"
# Added to indices made before them.
ADDED_FIELDS = ("content", "name", "title", "metadata", "stable_id", "parent_stable_id", "enabled")


def index_name(prefix: str, model: str | None, dataset: tuple[str, str] | None = None) -> str:
    """The index of ``model``'s chunks (None: economy documents) of one ``dataset`` (tenant,
    dataset); without one, the model's shared index (``INDEXFLOW_INDEX_PER_DATASET=false``, and
    where chunks indexed before datasets had their own still are)."""
    shared = f"{prefix}chunks-" + re.sub(r"[^a-z0-9-]+", "-", (model or BM25_ONLY).lower()).strip("-")
    if dataset is None:
        return shared
    # A digest: tenant and dataset ids may hold what index names may not (capitals, say).
    return f"{shared}.{hashlib.sha256('/'.join(dataset).encode()).hexdigest()[:16]}"


def dataset_indices(prefix: str, dataset: tuple[str, str], models: Iterable[str | None]) -> str:
    """Every index that may hold ``dataset``'s chunks of these models: its own, and the shared ones."""
    own_and_shared = ((index_name(prefix, model, dataset), index_name(prefix, model)) for model in models)
    return ",".join(name for names in own_and_shared for name in names)


def model_indices(prefix: str, model: str | None) -> str:
    """Every index of ``model``'s chunks: the shared one and each dataset's ("." cannot be in a slug)."""
    shared = index_name(prefix, model)
    return f"{shared},{shared}.*"


def is_model_index(prefix: str, model: str | None, index: str) -> bool:
    """Whether ``index`` is one of those ``model_indices`` names."""
    shared = index_name(prefix, model)
    return index == shared or index.startswith(shared + ".")


def all_chunk_indices(prefix: str) -> str:
    return f"{prefix}chunks-*"


def mapping(dims: int | None) -> dict[str, Any]:
    keyword = {"type": "keyword"}
    english = {"type": "text", "analyzer": "english"}  # stemmed, stopwords out: "running" finds "runs"
    properties: dict[str, Any] = {
        "content": {"type": "text", "fields": {"english": english}},
        # Hierarchical chunks: search matches the child, the answer is the parent's text.
        "parent_content": {"type": "text", "index": False},
        "name": {"type": "text", "fields": {"raw": keyword, "english": english}},
        "title": {"type": "text", "fields": {"english": english}},
        "metadata": {"type": "flattened"},  # any keys, filtered by exact value
        **{k: keyword for k in ("tenant_id", "dataset_id", "document_id", "document_key", "segment_id",
                                  "parent_id", "stable_id", "parent_stable_id", "kind", "content_hash", "model")},
        "enabled": {"type": "boolean"},  # False: a disabled segment, kept for its listing, never searched
        "revision": {"type": "long"},  # issued from the clock in milliseconds
        **{k: {"type": "integer"} for k in ("part", "position", "page", "tokens", "word_count")},
        "indexed_at": {"type": "date"},
    }
    if dims:
        # Float HNSW on purpose: Elasticsearch 8.14+ would otherwise quantise to int8_hnsw, and
        # rankings would differ from the ones measured (bench/retrieval_quality.py).
        properties["vector"] = {
            "type": "dense_vector", "dims": dims, "index": True, "similarity": "cosine",
            "index_options": {"type": "hnsw", "m": 16, "ef_construction": 100},
        }
    return {"dynamic": "strict", "properties": properties}


def ensure_index(es: Elasticsearch, name: str, dims: int | None) -> None:
    if es.indices.exists(index=name):
        # Fields added since the index was made (the english subfields, title, metadata) are added
        # in place; on Elasticsearch they cover chunks written from then on, older ones match
        # through `content`. Only those: a field's type or vector options cannot change in place.
        properties = mapping(dims)["properties"]
        es.indices.put_mapping(index=name, properties={f: properties[f] for f in ADDED_FIELDS})
        return
    try:
        es.indices.create(index=name, mappings=mapping(dims), settings={"number_of_shards": 1})
    except BadRequestError as exc:
        if "resource_already_exists" not in str(exc):  # another indexer created it meanwhile
            raise
