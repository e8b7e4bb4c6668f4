"""The reconciler: audits the index against the document states and repairs what differs.

For every document whose state is terminal (nothing in flight):

- *missing*: it is `completed` at revision R, but Elasticsearch holds fewer chunks of R than the
  chunk registry says were written (a server that lost acknowledged writes, a restored snapshot).
  Repair: re-drive the document as a new revision, which writes every chunk again.
- *stale*: Elasticsearch holds chunks of a revision the document does not serve (older than its
  state's revision, or of a revision that ended deleted, cancelled or in error). Repair: delete
  them by id. Chunks of revisions newer than the state are in flight and never touched.

Counts come from one aggregation per page of documents, so an audit costs
(documents / page size) queries, whatever the index size."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import redis
from elasticsearch import Elasticsearch, helpers

from schemas import TERMINAL_STATUSES, DocumentState, DocumentStatus, Priority
from services.indexer.chunk_registry import RegisteredPart, registered_parts_of
from services.indexer.mapping import all_chunk_indices
from services.projector.store import StateStore
from services.runtime.keys import RedisKeys
from services.runtime.producer import Producer
from services.runtime.registry import DocumentRegistry, redrive
from services.runtime.revisions import Revisions
from services.runtime.search_pages import all_hits
from services.runtime.status import StatusEmitter

log = logging.getLogger(__name__)
PAGE = 200
MAX_REVISIONS_PER_DOCUMENT = 100


@dataclass(frozen=True)
class Missing:
    document_key: str
    revision: int
    expected: int
    found: int


@dataclass
class ReconcileReport:
    audited: int = 0
    missing: list[Missing] = field(default_factory=list)
    stale_chunks: int = 0
    stale_documents: list[str] = field(default_factory=list)
    redriven: list[str] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return not self.missing and not self.stale_chunks


class Reconciler:
    def __init__(
        self, es: Elasticsearch, client: redis.Redis, keys: RedisKeys, prefix: str, states: StateStore,
        registry: DocumentRegistry, revisions: Revisions, producer: Producer, status: StatusEmitter,
    ):
        self.es = es
        self.redis = client
        self.keys = keys
        self.indices = all_chunk_indices(prefix)
        self.states = states
        self.registry = registry
        self.revisions = revisions
        self.producer = producer
        self.status = status

    def run(self, repair: bool = True, beat: Callable[[], None] = lambda: None) -> ReconcileReport:
        """Audit every finished document, a page at a time (``beat``: a sign of life per page)."""
        report = ReconcileReport()
        for states in self.states.pages(PAGE):
            beat()
            page = [s for s in states if s.status in TERMINAL_STATUSES]
            counts = self._chunk_counts([s.key for s in page])
            served = [s.key for s in page if s.status is DocumentStatus.COMPLETED]
            registries = registered_parts_of(self.redis, self.keys, served)
            for state in page:
                report.audited += 1
                self._audit(state, counts.get(state.key, {}), registries.get(state.key, []), report, repair)
        return report

    def _chunk_counts(self, keys: list[str]) -> dict[str, dict[int, int]]:
        """Document key -> revision -> chunks in the index (what has been refreshed)."""
        if not keys:
            return {}
        response = self.es.search(
            index=self.indices, allow_no_indices=True, ignore_unavailable=True, size=0,
            query={"terms": {"document_key": keys}},
            aggs={"documents": {
                "terms": {"field": "document_key", "size": len(keys)},
                "aggs": {"revisions": {"terms": {"field": "revision", "size": MAX_REVISIONS_PER_DOCUMENT}}},
            }},
        )
        buckets = (response.get("aggregations") or {}).get("documents", {}).get("buckets", [])
        return {
            b["key"]: {int(r["key"]): r["doc_count"] for r in b["revisions"]["buckets"]} for b in buckets
        }

    def _audit(
        self, state: DocumentState, found: dict[int, int], registry: list[RegisteredPart], report: ReconcileReport,
        repair: bool,
    ) -> None:
        serving = state.searchable_revision if state.status is DocumentStatus.COMPLETED else None
        stale = [r for r in found if r < state.revision or (r == state.revision and r != serving)]
        if stale:
            report.stale_documents.append(state.key)
            report.stale_chunks += sum(found[r] for r in stale)
            if repair and self._unchanged(state):
                self._delete(state.key, stale)
        if serving is None or serving != state.revision:
            return
        parts = [p for p in registry if p.revision == serving]
        if any(p.indexed is None for p in parts):
            return  # written before chunk counts were registered: nothing to compare with
        expected = sum(p.indexed for p in parts)
        if found.get(serving, 0) < expected:
            report.missing.append(Missing(state.key, serving, expected, found.get(serving, 0)))
            if repair and self._unchanged(state) and redrive(
                self.registry, self.revisions, self.producer, self.status, state.key, priority=Priority.BULK
            ):
                log.warning("%s revision %d: %d of %d chunks in the index; re-driven",
                            state.key, serving, found.get(serving, 0), expected)
                report.redriven.append(state.key)

    def _unchanged(self, state: DocumentState) -> bool:
        """Still the state audited: a document that moved meanwhile is judged on the next run."""
        now = self.states.get(state.key)
        return now is not None and now.revision == state.revision and now.status is state.status

    def _delete(self, key: str, revisions: list[int]) -> None:
        query = {"bool": {"filter": [{"term": {"document_key": key}}, {"terms": {"revision": revisions}}]}}
        hits = all_hits(self.es, self.indices, query, sort=["_shard_doc"], source=False)
        actions = [{"_op_type": "delete", "_index": h["_index"], "_id": h["_id"]} for h in hits]
        helpers.bulk(self.es, actions, raise_on_error=False)
        log.warning("%s: removed %d chunks of revisions %s it no longer serves", key, len(actions), revisions)
