"""Turn API calls into document events: store file bytes as blobs, number revisions, publish,
and report ``waiting`` first so a document's states start where the user acted."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from redis.lock import Lock

from schemas import (
    RERUN_STATUSES,
    BlobSource,
    DocumentCommand,
    DocumentDeleted,
    DocumentState,
    DocumentStatus,
    DocumentUpserted,
    IndexingSpec,
    InlineSource,
    Priority,
    Stage,
    document_key,
)
from schemas.documents import MAX_INLINE_TEXT_BYTES, Metadata
from schemas.edited import SEGMENT_LIST_MIME, SegmentList
from schemas.envelope import utc_now
from services.projector.store import StateStore
from services.runtime.blobs import BlobStore
from services.runtime.producer import Producer
from services.runtime.redis_client import redis_client
from services.runtime.registry import DocumentRegistry, redrive
from services.runtime.revisions import Revisions
from services.runtime.settings import Settings
from services.runtime.status import StatusEmitter
from topics.catalog import DOCUMENTS

BATCH_TTL_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Upsert:
    event: DocumentUpserted  # the new revision, or the current one when unchanged
    unchanged: bool
    state: DocumentState | None  # the document's projected state, for an unchanged upsert


class DocumentPublisher:
    def __init__(self, settings: Settings, states: StateStore):
        self.settings = settings
        self.producer = Producer(settings)
        self.status = StatusEmitter(self.producer, Stage.GATEWAY)
        self.redis = redis_client(settings)
        self.keys = settings.keys
        self.revisions = Revisions(self.redis, self.keys)
        self.blobs = BlobStore(settings)
        self.registry = DocumentRegistry(self.redis, self.keys, self.blobs)
        self.states = states

    def batch_documents(self, tenant_id: str, batch: str) -> dict[str, int]:
        """Document key -> the revision the batch wrote (the newest, if it wrote the document twice)."""
        written: dict[str, int] = {}
        for member in self.redis.smembers(self.keys.batch(tenant_id, batch)):
            key, marked, revision = member.decode().rpartition("|")
            if not marked:  # written before batches kept revisions: any revision counts
                key, revision = revision, "0"
            written[key] = max(written.get(key, 0), int(revision))
        return dict(sorted(written.items()))

    def writing(self, tenant_id: str, document_id: str) -> Lock:
        """The document's writer lock: hold it from reading its current revision to publishing the next."""
        return self.registry.writing(document_key(tenant_id, document_id))

    def dataset_of(self, tenant_id: str, document_id: str) -> str | None:
        """The dataset the document belongs to; None if it is unknown (or deleted)."""
        upsert = self.registry.newest_upsert(document_key(tenant_id, document_id))
        return upsert.dataset_id if upsert is not None else None

    def latest_revision(self, tenant_id: str, document_id: str) -> int | None:
        return self.revisions.latest(document_key(tenant_id, document_id))

    def retry(self, tenant_id: str, document_id: str, priority: Priority) -> DocumentUpserted | None:
        """Run the document again from its newest upsert, as a new revision."""
        return redrive(self.registry, self.revisions, self.producer, self.status, document_key(tenant_id, document_id),
                       priority=priority)

    def reembed(self, tenant_id: str, document_id: str, model: str) -> bool:
        """Run the document again, embedded with ``model``, as a new revision (on the bulk lane: a
        dataset moves as a whole); its current revision stays searchable until the new one
        completes. False for a document that embeds nothing."""
        def embedded_with(upsert: DocumentUpserted) -> dict | None:
            if upsert.indexing.indexing_technique == "economy":
                return None
            return {"indexing": upsert.indexing.model_copy(update={"embedding_model": model})}

        return redrive(self.registry, self.revisions, self.producer, self.status, document_key(tenant_id, document_id),
                       embedded_with, priority=Priority.BULK) is not None

    def change_metadata(self, tenant_id: str, document_id: str,
                        edit: Callable[[Metadata], Metadata]) -> DocumentUpserted | None:
        """The document again, as a new revision, with the metadata ``edit`` makes of its current
        metadata: every chunk carries it, so a change goes through the pipeline (cached embeddings
        make it cheap). None if the document is unknown or its metadata stays as it is."""
        def edited(upsert: DocumentUpserted) -> dict | None:
            metadata = edit(upsert.metadata)
            return {"metadata": metadata} if metadata != upsert.metadata else None

        return redrive(self.registry, self.revisions, self.producer, self.status, document_key(tenant_id, document_id),
                       edited, priority=Priority.INTERACTIVE)

    def reprocess(self, tenant_id: str, document_id: str, batch: str, priority: Priority,
                  change: Callable[[DocumentUpserted], dict]) -> DocumentUpserted | None:
        """The document's current source again, as a new revision of the ``batch`` with the fields
        ``change`` makes of its newest upsert (new settings). None if the document is unknown."""
        event = redrive(self.registry, self.revisions, self.producer, self.status, document_key(tenant_id, document_id),
                        change, priority=priority)
        if event is not None:
            self._add_to_batch(tenant_id, batch, event.key, event.revision)
        return event

    def upsert(
        self,
        *,
        tenant_id: str,
        dataset_id: str,
        document_id: str,
        name: str,
        indexing: IndexingSpec,
        metadata: Metadata,
        batch: str,
        text: str | None = None,
        file: BinaryIO | None = None,
        size: int | None = None,
        mime_type: str | None = None,
        priority: Priority = Priority.INTERACTIVE,
    ) -> Upsert:
        """A document from ``text``, or from ``file`` (``size`` bytes, streamed to the blob store).
        Content, name, metadata and indexing all as the document's current revision has them: no new
        revision, the current one is answered (unless it ended in error, cancelled or deleted). The
        caller holds ``writing(tenant_id, document_id)``."""
        key = document_key(tenant_id, document_id)
        content_hash = _sha256_of(file) if file is not None else _sha256((text or "").encode())
        current = self.registry.newest_upsert(key)
        if current is not None and (current.dataset_id, current.name, current.content_hash, current.metadata,
                                    current.indexing) == (dataset_id, name, content_hash, metadata, indexing):
            state = self.states.get(key)
            rerun = state is not None and state.status in RERUN_STATUSES
            if self.revisions.latest(key) == current.revision and not rerun:
                self._add_to_batch(tenant_id, batch, key, current.revision)
                return Upsert(current, unchanged=True, state=state)
        revision = self.revisions.next_revision(key)
        if file is not None:
            source = BlobSource(uri=self.blobs.put(tenant_id, document_id, revision, name, file), size=size)
        else:
            source = self._text_source(tenant_id, document_id, revision, name, (text or "").encode())
        event = DocumentUpserted(
            tenant_id=tenant_id, dataset_id=dataset_id, document_id=document_id, revision=revision,
            name=name, mime_type=mime_type, source=source, metadata=metadata, indexing=indexing,
            content_hash=content_hash, priority=priority,
        )
        self._publish(event)
        self._add_to_batch(tenant_id, batch, key, revision)
        return Upsert(event, unchanged=False, state=None)

    def put_segments(self, current: DocumentUpserted, segments: SegmentList) -> DocumentUpserted:
        """The document again as ``segments`` (an editor's: indexed as they are, never re-split), as
        a new revision with everything else ``current`` has. The caller holds ``writing``."""
        data = segments.model_dump_json().encode()
        revision = self.revisions.next_revision(current.key)
        event = current.model_copy(update={
            "event_id": uuid.uuid4(), "revision": revision, "attempt": 1, "produced_at": utc_now(),
            "priority": Priority.INTERACTIVE, "mime_type": SEGMENT_LIST_MIME, "content_hash": _sha256(data),
            "source": self._text_source(current.tenant_id, current.document_id, revision, "segments.json", data),
        })
        self._publish(event)
        return event

    def segment_list(self, upsert: DocumentUpserted) -> SegmentList:
        """The segments of an upsert given as its segments (the registry keeps its source as a blob)."""
        return SegmentList.model_validate_json(self.blobs.source_of(upsert))

    def _text_source(self, tenant_id: str, document_id: str, revision: int, name: str,
                     encoded: bytes) -> InlineSource | BlobSource:
        if len(encoded) <= MAX_INLINE_TEXT_BYTES:
            return InlineSource(text=encoded.decode())
        return BlobSource(uri=self.blobs.put(tenant_id, document_id, revision, name, encoded), size=len(encoded))

    def _publish(self, event: DocumentUpserted) -> None:
        """Publish the new revision, and only once Kafka has acknowledged it make it the document's
        current one: after a 503 the revision may never land, or land minutes later, so a retry of
        the same upload must publish again (a newer revision, which wins wherever they meet) rather
        than be answered ``unchanged`` with a revision nobody may ever process."""
        self.registry.fence(event.key)  # a writer that lost its document's lock publishes nothing
        self.status.emit(event, DocumentStatus.WAITING, name=event.name, content_hash=event.content_hash,
                         progress=0.0)
        self.producer.publish_and_wait(DOCUMENTS, event)
        self.registry.remember(event)

    def _add_to_batch(self, tenant_id: str, batch: str, key: str, revision: int) -> None:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(self.keys.batch(tenant_id, batch), f"{key}|{revision}")
            pipe.expire(self.keys.batch(tenant_id, batch), BATCH_TTL_SECONDS)
            pipe.execute()

    def delete(self, tenant_id: str, dataset_id: str, document_id: str,
               priority: Priority = Priority.INTERACTIVE) -> DocumentDeleted:
        key = document_key(tenant_id, document_id)
        event = DocumentDeleted(
            tenant_id=tenant_id, dataset_id=dataset_id, document_id=document_id,
            revision=self.revisions.next_revision(key), priority=priority,
        )
        self.producer.publish_and_wait(DOCUMENTS, event)
        self.registry.remember_delete(event)
        return event

    def command(self, tenant_id: str, dataset_id: str, document_id: str, revision: int, command: str,
                priority: Priority = Priority.INTERACTIVE) -> None:
        event = DocumentCommand(
            tenant_id=tenant_id, dataset_id=dataset_id, document_id=document_id, revision=revision, command=command,
            priority=priority,
        )
        self.producer.publish_and_wait(DOCUMENTS, event)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sha256_of(file: BinaryIO) -> str:
    """Hash a seekable upload (Starlette spools it to disk) and rewind it for the blob store."""
    digest = hashlib.sha256()
    while chunk := file.read(1 << 20):
        digest.update(chunk)
    file.seek(0)
    return digest.hexdigest()
