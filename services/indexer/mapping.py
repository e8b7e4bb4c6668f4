"""Chunk indices: one per embedding model and dataset, or, past the deployment's index budget, one
per model and tenant (services/indexer/placement.py). Per model, so datasets with different models
never share a vector field (economy documents, no vectors, have a BM25-only one); per dataset or
tenant, because BM25 takes its term statistics from the indices searched, not from what a filter
leaves: a dataset among others' would be scored by theirs, a tenant's by other tenants' (who could
then tell from their own scores which words another tenant's documents hold). Every index of a
tenant's chunks of one model carries that tenant's alias, which a search of all its datasets names.
A search or refresh of a dataset with its own index touches that dataset's chunks only."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from elasticsearch import BadRequestError, Elasticsearch

BM25_ONLY = "bm25"
# Added to indices made before them.
ADDED_FIELDS = ("content", "name", "title", "metadata", "stable_id", "parent_stable_id", "enabled")


def index_name(prefix: str, model: str | None, dataset: tuple[str, str] | None = None) -> str:
    """The index of ``model``'s chunks (None: economy documents) of one ``dataset`` (tenant,
    dataset); without one, the model's index of before indices were per dataset or tenant (which
    still holds the chunks indexed then, and is searched, never written)."""
    shared = f"{prefix}{_model_part(model)}"
    if dataset is None:
        return shared
    return f"{shared}.{_digest('/'.join(dataset))}"


def tenant_index(prefix: str, model: str | None, tenant: str) -> str:
    """The index that ``tenant``'s datasets past the index budget share for ``model``'s chunks."""
    return f"{prefix}{_model_part(model)}.tenant-{_digest(tenant)}"


def tenant_alias(prefix: str, model: str | None, tenant: str) -> str:
    """The alias of every index of ``tenant``'s chunks of ``model``: its datasets' own and its shared one."""
    return f"{prefix}tenant-{_model_part(model)}.{_digest(tenant)}"


def alias_of(prefix: str, index: str, tenant: str) -> str:
    """``tenant_alias`` of the model whose chunks ``index`` holds."""
    return f"{prefix}tenant-{index[len(prefix):].split('.')[0]}.{_digest(tenant)}"


def is_model_index(prefix: str, model: str | None, index: str) -> bool:
    """Whether ``index`` holds ``model``'s chunks ("." cannot be in a model's slug)."""
    shared = index_name(prefix, model)
    return index == shared or index.startswith(shared + ".")


def _model_part(model: str | None) -> str:
    return "chunks-" + re.sub(r"[^a-z0-9-]+", "-", (model or BM25_ONLY).lower()).strip("-")


def _digest(name: str) -> str:
    # Tenant and dataset ids may hold what index names may not (capitals, say).
    return hashlib.sha256(name.encode()).hexdigest()[:16]


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


def ensure_index(es: Elasticsearch, name: str, dims: int | None, alias: str) -> None:
    if es.indices.exists(index=name):
        # Fields added since the index was made (the english subfields, title, metadata) are added
        # in place; on Elasticsearch they cover chunks written from then on, older ones match
        # through `content`. Only those: a field's type or vector options cannot change in place.
        properties = mapping(dims)["properties"]
        es.indices.put_mapping(index=name, properties={f: properties[f] for f in ADDED_FIELDS})
        es.indices.put_alias(index=name, name=alias)  # indices made before tenants had aliases
        return
    try:
        es.indices.create(index=name, mappings=mapping(dims), settings={"number_of_shards": 1}, aliases={alias: {}})
    except BadRequestError as exc:
        if "resource_already_exists" not in str(exc):  # another indexer created it meanwhile
            raise
