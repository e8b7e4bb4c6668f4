"""embedded -> Elasticsearch. Buffers a batch's chunks and writes them in one bulk (by segment id,
so a redelivery overwrites itself); when every part of a revision is in, removes the chunks of
older revisions and reports the document completed. Deletes remove every chunk of a document."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Message
from elasticsearch import ApiError, Elasticsearch, helpers

from schemas import DocumentDeleted, DocumentStatus, EmbeddedBatch, Stage
from schemas.envelope import utc_now
from services.indexer.mapping import all_chunk_indices, ensure_index, index_name
from services.runtime.errors import DependencyUnavailable
from services.runtime.handler import Context, Handler
from services.runtime.redis_client import redis_client
from topics.catalog import DOCUMENTS, EMBEDDED

log = logging.getLogger(__name__)

PROGRESS_TTL_SECONDS = 7 * 24 * 3600


@dataclass
class _Pending:
    """What one flush writes: chunk actions, the parts they complete, the deletions."""

    actions: list[dict[str, Any]] = field(default_factory=list)
    parts: list[tuple[Message, EmbeddedBatch]] = field(default_factory=list)
    deletions: list[DocumentDeleted] = field(default_factory=list)


class Indexer(Handler):
    stage = Stage.INDEXER
    inputs = (EMBEDDED, DOCUMENTS)
    batch_size = 50

    def __init__(self, context: Context):
        super().__init__(context)
        settings = context.settings
        self.es = Elasticsearch(settings.elasticsearch_url, request_timeout=120)
        self.redis = redis_client(settings)
        self.prefix = settings.topic_prefix
        self._documents_topic = settings.topic(DOCUMENTS.name)
        self._indices: set[str] = set()
        self._pending = _Pending()

    # -- per record ---------------------------------------------------------------------------

    def handle(self, message: Message) -> None:
        if message.topic() == self._documents_topic:
            event = DOCUMENTS.codec.decode(message.value())
            if isinstance(event, DocumentDeleted):
                self.context.revisions.check(event)
                self._pending.deletions.append(event)
            return
        batch = EMBEDDED.codec.decode(message.value())
        if not self.admit(message, batch):
            return
        index = index_name(self.prefix, batch.model)
        if index not in self._indices:
            ensure_index(self.es, index, batch.dims)
            self._indices.add(index)
        parents = {s.segment_id: s.content for s in batch.segments if s.kind == "parent"}
        now = utc_now().isoformat()
        for segment in batch.segments:
            if segment.kind == "parent":
                continue  # searched through its children, returned as their parent_content
            source = {
                "content": segment.content,
                "parent_content": parents.get(segment.parent_id) if segment.parent_id else None,
                "name": batch.name,
                "tenant_id": batch.tenant_id,
                "dataset_id": batch.dataset_id,
                "document_id": batch.document_id,
                "document_key": batch.key,
                "segment_id": segment.segment_id,
                "parent_id": segment.parent_id,
                "kind": segment.kind,
                "content_hash": segment.content_hash,
                "model": batch.model,
                "revision": batch.revision,
                "part": batch.part,
                "position": segment.position,
                "page": segment.page,
                "tokens": segment.tokens,
                "word_count": segment.word_count,
                "indexed_at": now,
            }
            if segment.vector is not None:
                source["vector"] = segment.vector
            self._pending.actions.append({"_index": index, "_id": segment.segment_id, "_source": source})
        self._pending.parts.append((message, batch))

    # -- per batch ----------------------------------------------------------------------------

    def flush(self) -> None:
        pending, self._pending = self._pending, _Pending()
        rejected = self._bulk(pending.actions)
        whole = []
        for message, batch in pending.parts:
            reasons = [rejected[s.segment_id] for s in batch.segments if s.segment_id in rejected]
            if reasons:
                self.context.dead_letters.send(message, RuntimeError(f"Elasticsearch rejected: {reasons[0]}"), 1)
            elif (counts := self._part_indexed(batch)) is not None:
                whole.append((batch, counts))
        if whole:
            # One refresh per batch, not per document: completed means searchable.
            self.es.indices.refresh(index=",".join({index_name(self.prefix, b.model) for b, _ in whole}))
        for batch, (segment_count, token_count) in whole:
            self._complete(batch, segment_count, token_count)
        for deletion in pending.deletions:
            self._delete_document(deletion)

    def _bulk(self, actions: list[dict[str, Any]]) -> dict[str, str]:
        """Write the chunks; return the ids Elasticsearch rejected for the document's own fault."""
        if not actions:
            return {}
        try:
            _, errors = helpers.bulk(self.es, actions, raise_on_error=False, raise_on_exception=False)
        except ApiError as exc:
            raise DependencyUnavailable(f"Elasticsearch bulk failed: {exc}") from exc
        rejected = {}
        for error in errors:
            item = next(iter(error.values()))
            if item.get("status") == 429 or item.get("status", 500) >= 500:
                raise DependencyUnavailable(f"Elasticsearch: {item.get('error')}")
            rejected[item["_id"]] = str(item.get("error"))[:300]
        return rejected

    def _part_indexed(self, batch: EmbeddedBatch) -> tuple[int, int] | None:
        """Record the part; once every part of the revision is in, its (segments, tokens)."""
        segments = [s for s in batch.segments if s.kind != "child"]
        progress_key = f"{self.prefix}progress:{batch.key}:{batch.revision}"
        with self.redis.pipeline() as pipe:
            pipe.hset(progress_key, str(batch.part), f"{len(segments)},{sum(s.tokens for s in segments)}")
            pipe.expire(progress_key, PROGRESS_TTL_SECONDS)
            # Which revisions have chunks in the index: the cleanup runs only when needed.
            pipe.sadd(self._revisions_key(batch.key), batch.revision)
            pipe.hgetall(progress_key)
            *_, done = pipe.execute()
        if len(done) < batch.parts:
            self.context.status.emit(batch, DocumentStatus.INDEXING, progress=round(len(done) / batch.parts, 4))
            return None
        counts = [tuple(map(int, v.split(b","))) for v in done.values()]
        return sum(c[0] for c in counts), sum(c[1] for c in counts)

    def _complete(self, batch: EmbeddedBatch, segment_count: int, token_count: int) -> None:
        status = self.context.status
        if segment_count == 0:
            status.emit(batch, DocumentStatus.ERROR, error="no text left after cleaning: nothing to index")
            return
        older = [r for r in map(int, self.redis.smembers(self._revisions_key(batch.key))) if r < batch.revision]
        if older:
            self._delete_chunks(batch.key, below_revision=batch.revision)
            self.redis.srem(self._revisions_key(batch.key), *older)
        status.emit(
            batch, DocumentStatus.COMPLETED, progress=1.0, segment_count=segment_count, token_count=token_count
        )

    def _revisions_key(self, document_key: str) -> str:
        return f"{self.prefix}indexed-revisions:{document_key}"

    def _delete_document(self, deletion: DocumentDeleted) -> None:
        self._delete_chunks(deletion.key, below_revision=deletion.revision + 1)
        self.redis.delete(self._revisions_key(deletion.key))
        self.context.status.emit(deletion, DocumentStatus.DELETED)

    def _delete_chunks(self, document_key: str, below_revision: int) -> None:
        self.es.delete_by_query(
            index=all_chunk_indices(self.prefix),
            query={
                "bool": {
                    "filter": [
                        {"term": {"document_key": document_key}},
                        {"range": {"revision": {"lt": below_revision}}},
                    ]
                }
            },
            refresh=True,
            conflicts="proceed",
            allow_no_indices=True,
        )
