"""embedded -> Elasticsearch. Reads one ordered stream per document (its content, then its
retractions), writes chunks by segment id in one bulk per batch, and removes chunks by id.

The chunk registry (state Redis, one hash per document: "revision/part" -> index and sizes) is
written *before* the bulk write, and segment ids are derived from (document, revision, part,
position), so every chunk that may be in the index can be named and deleted exactly, with no
refresh and no scan (``delete_by_query`` sees only what was refreshed, so it misses fresh writes).
After writing, the revision gate is read again: a write that became stale or closed meanwhile (an
indexer evicted mid-batch, a delete that overtook it) removes what it just wrote."""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Message
from elasticsearch import ApiError, helpers

from schemas import DocumentRetracted, DocumentStatus, EmbeddedBatch, Priority, Stage
from schemas.envelope import utc_now
from services.indexer.chunk_registry import RegisteredPart, parts_registered, registered_parts_of
from services.indexer.dataset_removal import DatasetRemoval
from services.indexer.legacy_aliases import alias_unaliased_indices
from services.indexer.mapping import ensure_index, index_name, tenant_alias
from services.indexer.placement import IndexPlacements, Placement
from services.indexer.refresh import RefreshPacer
from services.runtime.datasets import DatasetModels
from services.runtime.elasticsearch_client import elasticsearch_client
from services.runtime.errors import DependencyUnavailable, elasticsearch_outage
from services.runtime.handler import Context, Handler
from services.runtime.metrics import BULK_SECONDS, CHUNKS_DELETED, CHUNKS_INDEXED, DOCUMENTS_COMPLETED, REFRESH_SECONDS
from services.runtime.redis_client import redis_client
from services.runtime.revisions import Verdict
from services.runtime.serving import ServingRevisions
from topics.catalog import EMBEDDED, STAGE_INPUTS

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    """What one flush writes: chunk actions, the parts they belong to, the retractions."""

    actions: list[dict[str, Any]] = field(default_factory=list)
    parts: list[tuple[Message, EmbeddedBatch, RegisteredPart]] = field(default_factory=list)
    retractions: list[DocumentRetracted] = field(default_factory=list)


class Indexer(Handler):
    stage = Stage.INDEXER
    inputs = (STAGE_INPUTS[stage],)
    retractions_to = EMBEDDED  # a part the index rejects retracts its revision through here
    # A batch is written in one bulk and made searchable by one refresh, at most about one a
    # second (refresh.py): what completes meanwhile comes as the next batch, so a batch holds as
    # many small documents as arrive; sized in bytes (vectors) too, so its bulk stays short and an
    # interactive record waiting behind it is not held for long.
    batch_size = 2_000
    batch_bytes = 4 * 2**20

    def __init__(self, context: Context):
        super().__init__(context)
        settings = context.settings
        self.es = elasticsearch_client(settings, request_timeout=120)
        self.redis = redis_client(settings)
        self.keys = settings.keys
        self.datasets = DatasetModels(self.redis, self.keys)
        self.serving = ServingRevisions(self.redis, self.keys)
        self.prefix = settings.topic_prefix
        self.placements = IndexPlacements(self.redis, self.keys, settings.dataset_index_budget)
        self.removals = DatasetRemoval(self.es, self.redis, self.keys, self.prefix, self.placements, self.datasets)
        self._indices: set[tuple[str, str]] = set()  # (index, placement token) ensured by this process
        self._pending = _Pending()
        self._placed: dict[tuple[str, str], Placement] = {}  # (tenant, dataset) -> its placement, this batch
        self.refreshes = RefreshPacer(
            self._refresh, settings.refresh_interval_seconds, settings.refresh_budget,
            settings.refresh_urgent_interval_seconds, wait=context.give_way.wait,
        )

    # -- per record ---------------------------------------------------------------------------

    def handle(self, message: Message) -> None:
        event = self.decode(message)
        if isinstance(event, DocumentRetracted):
            self.context.revisions.check(event)
            self._pending.retractions.append(event)
            return
        if not self.admit(message, event):
            return
        own_index = index_name(self.prefix, event.model, (event.tenant_id, event.dataset_id))
        placed = (event.tenant_id, event.dataset_id)
        if placed not in self._placed:  # read once per batch: a batch's records share few datasets
            self._placed[placed] = self.placements.place(event.tenant_id, event.dataset_id,
                                                         lambda: self.es.indices.exists(index=own_index))
        placement = self._placed[placed]
        index = placement.index(self.prefix, event.model, event.tenant_id, event.dataset_id)
        if (index, placement.token) not in self._indices:
            if not self._indices:  # this process's first write: indices of before get their tenant's alias
                alias_unaliased_indices(self.es, self.prefix)
            ensure_index(self.es, index, event.dims, tenant_alias(self.prefix, event.model, event.tenant_id))
            self._indices.add((index, placement.token))
        if event.model is not None:  # before its chunks are written: search must know to look there
            self.datasets.record_indexed(event.tenant_id, event.dataset_id, event.model)
        parents = {s.segment_id: s for s in event.segments if s.kind == "parent"}
        now = utc_now().isoformat()
        for segment in event.segments:
            if segment.kind == "parent":
                continue  # searched through its children, returned as their parent_content
            parent = parents.get(segment.parent_id) if segment.parent_id else None
            source = {
                "content": segment.content,
                "parent_content": parent.content if parent else None,
                "name": event.name,
                "title": event.title,
                "metadata": {k: v for k, v in event.metadata.items() if v is not None},
                "tenant_id": event.tenant_id,
                "dataset_id": event.dataset_id,
                "document_id": event.document_id,
                "document_key": event.key,
                "segment_id": segment.segment_id,
                "parent_id": segment.parent_id,
                # The ids an editor knows the chunk and its parent by, the same in every revision.
                "stable_id": segment.stable_id or segment.segment_id,
                "parent_stable_id": (parent.stable_id or parent.segment_id) if parent else None,
                "enabled": segment.enabled,
                "kind": segment.kind,
                "content_hash": segment.content_hash,
                "model": event.model,
                "revision": event.revision,
                "part": event.part,
                "position": segment.position,
                "page": segment.page,
                "tokens": segment.tokens,
                "word_count": segment.word_count,
                "indexed_at": now,
            }
            if segment.vector is not None:
                source["vector"] = segment.vector
            self._pending.actions.append({"_index": index, "_id": segment.segment_id, "_source": source})
        own = event.own_segments  # not the parent copies a piece carries for its children
        counted = [s for s in own if s.kind != "child"]
        registered = RegisteredPart(
            event.revision, event.part, index, len(own), len(counted), sum(s.tokens for s in counted),
            indexed=sum(1 for s in own if s.kind != "parent"),
            piece=event.piece, pieces=event.pieces, first=event.first_position,
            words=sum(s.word_count for s in counted),
        )
        self._pending.parts.append((message, event, registered))

    # -- per batch ----------------------------------------------------------------------------

    def flush(self) -> None:
        # Failing anywhere below makes the loop redo the whole batch: every step is idempotent.
        pending, self._pending = self._pending, _Pending()
        self._placed = {}
        registries = self._register(pending.parts)
        whole = []
        for _, batch, _ in pending.parts:
            parts = [p for p in registries[batch.key] if p.revision == batch.revision]
            registered = parts_registered(parts)
            if registered == batch.parts:
                whole.append((batch, parts))
            else:
                self._progress(batch, registered)
        rejected = self._bulk(pending.actions)
        # "Completed" means searchable: the indices holding every part of what completes.
        self.refreshes.refresh((part.index for _, parts in whole for part in parts),
                               urgent=any(batch.priority is Priority.INTERACTIVE for batch, _ in whole))
        for message, batch, _ in pending.parts:
            reasons = [rejected[s.segment_id] for s in batch.segments if s.segment_id in rejected]
            if reasons:
                self.context.dead_letters.send(message, RuntimeError(f"Elasticsearch rejected: {reasons[0]}"), 1)
        self._remove_overtaken_writes(pending)
        completing = list({(b.key, b.revision): (b, p) for b, p in whole}.values())
        verdicts = self.context.revisions.verdicts([(batch.key, batch.revision) for batch, _ in completing])
        self._complete([done for done, verdict in zip(completing, verdicts) if verdict is Verdict.CURRENT])
        for retraction in pending.retractions:
            self._retract(retraction)

    def _register(self, parts: list[tuple[Message, EmbeddedBatch, RegisteredPart]]) -> dict[str, list[RegisteredPart]]:
        """Record every part before its chunks are written; return each document's registry."""
        keys = sorted({batch.key for _, batch, _ in parts})
        with self.redis.pipeline(transaction=False) as pipe:
            for _, batch, registered in parts:
                pipe.hset(self.keys.chunks(batch.key), registered.field, registered.value)
            for key in keys:
                pipe.hgetall(self.keys.chunks(key))
            found = pipe.execute()[len(parts):]
        return {key: [RegisteredPart.parse(f, v) for f, v in entries.items()] for key, entries in zip(keys, found)}

    def _remove_overtaken_writes(self, pending: _Pending) -> None:
        """A revision that went stale or closed while its chunks were being written (a newer
        revision, a delete or a cancel overtook it): delete the chunks this batch wrote of it, by
        the ids it wrote, and forget the parts it registered. Not by what the registry lists: a
        cleaner on another indexer may have removed the revision and dropped its entry before these
        chunks landed. Only that revision: an older one may still be what search serves, until the
        newer revision completes (which removes all older ones) or a retraction removes it."""
        written = list({(batch.key, batch.revision) for _, batch, _ in pending.parts})
        overtaken = {w for w, verdict in zip(written, self.context.revisions.verdicts(written))
                     if verdict in (Verdict.STALE, Verdict.CLOSED)}
        if not overtaken:
            return
        self._bulk([{"_op_type": "delete", "_index": action["_index"], "_id": action["_id"]}
                    for action in pending.actions
                    if (action["_source"]["document_key"], action["_source"]["revision"]) in overtaken])
        with self.redis.pipeline(transaction=False) as pipe:
            for _, batch, registered in pending.parts:
                if (batch.key, batch.revision) in overtaken:
                    pipe.hdel(self.keys.chunks(batch.key), registered.field)
            pipe.execute()

    def _complete(self, completing: list[tuple[EmbeddedBatch, list[RegisteredPart]]]) -> None:
        """Complete each revision whose parts are all written, in a few round trips for all."""
        for batch, parts in completing:
            if sum(p.segments for p in parts) == 0:
                self.context.dead_letters.fail(batch.identity(), "no text left after cleaning: nothing to index")
        completing = [(batch, parts) for batch, parts in completing if sum(p.segments for p in parts)]
        # Named servable before the older chunks go: search always has one whole revision to serve.
        self.serving.publish_many([(batch.key, batch.revision) for batch, _ in completing])
        self._remove({batch.key: (lambda r, newest=batch.revision: r < newest) for batch, _ in completing})
        for batch, parts in completing:
            self.context.status.emit(
                batch, DocumentStatus.COMPLETED, progress=1.0, segment_count=sum(p.segments for p in parts),
                token_count=sum(p.tokens for p in parts), word_count=sum(p.words for p in parts),
            )
        DOCUMENTS_COMPLETED.inc(len(completing))

    def _progress(self, batch: EmbeddedBatch, parts: float) -> None:
        self.context.status.emit(batch, DocumentStatus.INDEXING, progress=round(parts / batch.parts, 4))

    def _retract(self, retraction: DocumentRetracted) -> None:
        self.serving.withdraw(retraction.key, retraction.revision)
        self._remove({retraction.key: lambda r: r <= retraction.revision})
        if retraction.reason == "deleted":
            self.context.status.emit(retraction, DocumentStatus.DELETED)
            self.removals.document_deleted(retraction.tenant_id, retraction.dataset_id, retraction.document_id)

    def _remove(self, doomed_revisions: dict[str, Callable[[int], bool]]) -> None:
        """Delete, by id, every registered chunk of each document whose revision matches; then
        forget them. One registry read, one bulk and one write for all the documents."""
        registries = registered_parts_of(self.redis, self.keys, list(doomed_revisions))
        doomed = {key: [p for p in registries[key] if matches(p.revision)] for key, matches in doomed_revisions.items()}
        doomed = {key: parts for key, parts in doomed.items() if parts}
        if not doomed:
            return
        self._bulk([{"_op_type": "delete", "_index": p.index, "_id": chunk_id}
                    for key, parts in doomed.items() for p in parts for chunk_id in p.chunk_ids(key)])
        with self.redis.pipeline(transaction=False) as pipe:
            for key, parts in doomed.items():
                pipe.hdel(self.keys.chunks(key), *(p.field for p in parts))
            pipe.execute()

    def _refresh(self, indices: list[str]) -> None:
        try:
            with REFRESH_SECONDS.time():
                self.es.indices.refresh(index=",".join(indices))
        except ApiError as exc:
            raise DependencyUnavailable(f"Elasticsearch refresh failed: {exc}") from exc

    def _bulk(self, actions: list[dict[str, Any]]) -> dict[str, str]:
        """Run the actions; return the ids Elasticsearch rejected for the document's own fault."""
        if not actions:
            return {}
        try:
            with BULK_SECONDS.time():
                _, errors = helpers.bulk(self.es, actions, raise_on_error=False, raise_on_exception=False)
        except ApiError as exc:
            raise DependencyUnavailable(f"Elasticsearch bulk failed: {exc}") from exc
        deletes = sum(action.get("_op_type") == "delete" for action in actions)
        failed = collections.Counter(next(iter(error)) for error in errors)  # operation -> items
        CHUNKS_DELETED.inc(deletes - failed["delete"])
        CHUNKS_INDEXED.inc(len(actions) - deletes - failed["index"])
        rejected = {}
        for error in errors:
            operation, item = next(iter(error.items()))
            status = item.get("status")
            if operation == "delete" and status == 404:
                continue  # already gone (or a parent, never indexed)
            # A request refused as a whole marks every item with its status: never the items' fault.
            if not isinstance(status, int) or status >= 500 or elasticsearch_outage(status, item.get("error")):
                raise DependencyUnavailable(f"Elasticsearch answered {status}: {item.get('error') or item}")
            rejected[item["_id"]] = str(item.get("error"))[:300]
        return rejected
