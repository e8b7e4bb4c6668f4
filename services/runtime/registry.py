"""The document registry: each document's newest upsert, the record to re-drive it from (retry,
watchdog, reconciler). Kept in the state Redis; an inline text is spilled to the blob store first,
so Redis holds small records only."""

from __future__ import annotations

import uuid

import redis

from schemas import DOCUMENT_EVENTS, BlobSource, DocumentStatus, DocumentUpserted, InlineSource
from schemas.envelope import utc_now
from services.runtime.blobs import BlobStore
from services.runtime.producer import Producer
from services.runtime.revisions import Revisions
from services.runtime.status import StatusEmitter
from services.runtime.keys import RedisKeys
from topics.catalog import DOCUMENTS


class DocumentRegistry:
    def __init__(self, client: redis.Redis, keys: RedisKeys, blobs: BlobStore):
        self._redis = client
        self._keys = keys
        self._blobs = blobs

    def remember(self, upsert: DocumentUpserted) -> None:
        if isinstance(upsert.source, InlineSource):
            data = upsert.source.text.encode()
            uri = self._blobs.put(upsert.tenant_id, upsert.document_id, upsert.revision, "inline.txt", data)
            upsert = upsert.model_copy(update={"source": BlobSource(uri=uri, size=len(data))})
        self._redis.hset(self._keys.documents, upsert.key, DOCUMENT_EVENTS.encode(upsert))

    def newest_upsert(self, key: str) -> DocumentUpserted | None:
        raw = self._redis.hget(self._keys.documents, key)
        return DOCUMENT_EVENTS.decode(raw) if raw is not None else None  # type: ignore[return-value]

    def forget(self, tenant_id: str, document_id: str, key: str) -> None:
        """The document is deleted: drop its record and every blob it left."""
        self._redis.hdel(self._keys.documents, key)
        self._blobs.delete_document(tenant_id, document_id)


def redrive(
    registry: DocumentRegistry, revisions: Revisions, producer: Producer, status: StatusEmitter, key: str
) -> DocumentUpserted | None:
    """Publish the document's newest upsert again as a new revision (one more attempt), so it runs
    through every stage afresh whatever became of the old one (errored, cancelled, stuck, lost).
    None when nothing is known of the document."""
    upsert = registry.newest_upsert(key)
    if upsert is None:
        return None
    again = upsert.model_copy(
        update={
            "event_id": uuid.uuid4(),
            "revision": revisions.next_revision(key),
            "attempt": upsert.attempt + 1,
            "produced_at": utc_now(),
        }
    )
    status.emit(again, DocumentStatus.WAITING, name=again.name, progress=0.0, attempts=again.attempt)
    producer.publish_and_wait(DOCUMENTS, again)
    return again
