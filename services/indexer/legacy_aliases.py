"""Indices made before tenants had aliases get their tenant's: a search of all a tenant's datasets
names the alias, and would miss a dataset indexed then and not written to since. An index holds
one tenant's chunks, so any chunk of it names the tenant; the per-model indices of before hold
every tenant's and take no alias (search names them apart)."""

from __future__ import annotations

from elasticsearch import Elasticsearch

from services.indexer.mapping import alias_of, all_chunk_indices


def alias_unaliased_indices(es: Elasticsearch, prefix: str) -> None:
    found = es.indices.get(index=all_chunk_indices(prefix), allow_no_indices=True, ignore_unavailable=True)
    for index, described in found.items():
        if "." not in index[len(prefix):] or described.get("aliases"):
            continue  # a per-model index of before, or aliased already
        chunk = es.search(index=index, size=1, source=["tenant_id"])["hits"]["hits"]
        if chunk:  # an empty one takes its alias when next written to (mapping.ensure_index)
            es.indices.put_alias(index=index, name=alias_of(prefix, index, chunk[0]["_source"]["tenant_id"]))
