"""A revision's chunks as the index holds them: every one, in (part, position) order, or an error.
The chunk registry knows how many chunks each revision was written with. A read that finds another
count (lost writes, a revision removed while it was read) is refused, never answered short: an
edit built from it would publish the document without the missing segments, and completing that
revision would delete them."""

from __future__ import annotations

from typing import Any

from schemas import document_key
from services.gateway.errors import ApiError
from services.gateway.services import Services
from services.indexer.chunk_registry import chunks_written, registered_parts
from services.indexer.mapping import all_chunk_indices
from services.runtime.redis_client import redis_client
from services.runtime.search_pages import all_hits

FIELDS = ["segment_id", "stable_id", "document_id", "content", "parent_id", "parent_stable_id", "parent_content",
          "part", "position", "page", "tokens", "word_count", "content_hash", "indexed_at", "enabled",
          "title"]  # never the vector
_ORDER = [{"part": "asc"}, {"position": "asc"}]  # one revision's chunks: unique, so a total order


def revision_chunks(s: Services, tenant: str, document_id: str, revision: int) -> list[dict[str, Any]]:
    key = document_key(tenant, document_id)
    query = {"bool": {"filter": [{"term": {"tenant_id": tenant}}, {"term": {"document_id": document_id}},
                                 {"term": {"revision": revision}}]}}
    chunks = [hit["_source"] for hit in all_hits(s.es, all_chunk_indices(s.settings.topic_prefix), query,
                                                  _ORDER, FIELDS)]
    written = chunks_written(registered_parts(redis_client(s.settings), s.settings.keys, key), revision)
    if written is not None and written != len(chunks):
        raise ApiError(503, f"Read {len(chunks)} of the {written} chunks of the document's revision {revision}; "
                            "retry shortly.", headers={"Retry-After": "1"})
    return chunks
