"""How many words each document's served revision holds, as Dify's ``word_count`` says: the sum of
its chunks' word counts, added up by the search engine in one request for a page of documents."""

from __future__ import annotations

from collections.abc import Iterable

from schemas import document_key
from services.gateway.services import Services
from services.indexer.mapping import all_chunk_indices

_REVISIONS_PER_DOCUMENT = 8  # the served one and any newer being written; older ones are removed


def word_counts(s: Services, tenant: str, document_ids: Iterable[str]) -> dict[str, int]:
    """Document id -> words of the revision search serves (those not served yet are left out)."""
    keys = {document_key(tenant, d): d for d in document_ids}
    served = s.serving_revisions(keys)
    if not served:
        return {}
    ids = [keys[key] for key in served]
    response = s.es.search(
        index=all_chunk_indices(s.settings.topic_prefix), allow_no_indices=True, ignore_unavailable=True, size=0,
        query={"bool": {"filter": [{"term": {"tenant_id": tenant}}, {"terms": {"document_id": ids}}]}},
        aggs={"documents": {
            "terms": {"field": "document_id", "size": len(ids)},
            "aggs": {"revisions": {"terms": {"field": "revision", "size": _REVISIONS_PER_DOCUMENT},
                                   "aggs": {"words": {"sum": {"field": "word_count"}}}}},
        }},
    )
    counts: dict[str, int] = {}
    for bucket in (response.get("aggregations") or {}).get("documents", {}).get("buckets", []):
        revision = served[document_key(tenant, bucket["key"])]
        for by_revision in bucket["revisions"]["buckets"]:
            if int(by_revision["key"]) == revision:
                counts[bucket["key"]] = int(by_revision["words"]["value"] or 0)
    return counts
