"""Turn API calls into document events: store file bytes as blobs, number revisions, publish,
and report ``waiting`` first so a document's states start where the user acted."""

from __future__ import annotations

import uuid

from schemas import (
    BlobSource,
    DocumentCommand,
    DocumentDeleted,
    DocumentStatus,
    DocumentUpserted,
    IndexingSpec,
    InlineSource,
    Stage,
    document_key,
)
from schemas.documents import MAX_INLINE_TEXT_BYTES, Metadata
from services.runtime.blobs import BlobStore
from services.runtime.producer import Producer
from services.runtime.redis_client import redis_client
from services.runtime.revisions import Revisions
from services.runtime.settings import Settings
from services.runtime.status import StatusEmitter
from topics.catalog import DOCUMENTS

BATCH_TTL_SECONDS = 7 * 24 * 3600


class DocumentPublisher:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.producer = Producer(settings)
        self.status = StatusEmitter(self.producer, Stage.GATEWAY)
        self.redis = redis_client(settings)
        self.revisions = Revisions(self.redis, settings.topic_prefix)
        self.blobs = BlobStore(settings)

    def _batch_key(self, batch: str) -> str:
        return f"{self.settings.topic_prefix}batch:{batch}"

    def batch_documents(self, batch: str) -> list[str]:
        return sorted(k.decode() for k in self.redis.smembers(self._batch_key(batch)))

    def exists(self, tenant_id: str, document_id: str) -> bool:
        return self.revisions.known(document_key(tenant_id, document_id))

    def upsert(
        self,
        *,
        tenant_id: str,
        dataset_id: str,
        document_id: str | None,
        name: str,
        indexing: IndexingSpec,
        metadata: Metadata,
        batch: str,
        text: str | None = None,
        data: bytes | None = None,
        mime_type: str | None = None,
    ) -> DocumentUpserted:
        document_id = document_id or uuid.uuid4().hex
        key = document_key(tenant_id, document_id)
        revision = self.revisions.next_revision(key)
        if text is not None and len(text.encode()) <= MAX_INLINE_TEXT_BYTES:
            source = InlineSource(text=text)
        else:
            payload = data if data is not None else (text or "").encode()
            uri = self.blobs.put(tenant_id, document_id, revision, name, payload)
            source = BlobSource(uri=uri, size=len(payload))
        event = DocumentUpserted(
            tenant_id=tenant_id, dataset_id=dataset_id, document_id=document_id, revision=revision,
            name=name, mime_type=mime_type, source=source, metadata=metadata, indexing=indexing,
        )
        self.status.emit(event, DocumentStatus.WAITING, name=name, progress=0.0)
        self.producer.publish(DOCUMENTS, event)
        self.producer.flush()
        with self.redis.pipeline() as pipe:
            pipe.sadd(self._batch_key(batch), key)
            pipe.expire(self._batch_key(batch), BATCH_TTL_SECONDS)
            pipe.execute()
        return event

    def delete(self, tenant_id: str, dataset_id: str, document_id: str) -> DocumentDeleted:
        key = document_key(tenant_id, document_id)
        event = DocumentDeleted(
            tenant_id=tenant_id, dataset_id=dataset_id, document_id=document_id,
            revision=self.revisions.next_revision(key),
        )
        self.producer.publish(DOCUMENTS, event)
        self.producer.flush()
        return event

    def command(self, tenant_id: str, dataset_id: str, document_id: str, revision: int, command: str) -> None:
        event = DocumentCommand(
            tenant_id=tenant_id, dataset_id=dataset_id, document_id=document_id, revision=revision, command=command
        )
        self.producer.publish(DOCUMENTS, event)
        self.producer.flush()
