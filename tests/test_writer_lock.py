"""The document writer lock on a real Redis: a second writer waits, and past its wait is told the
document is busy (never let in); the lease is renewed while the writer works, and a writer that
lost its lock all the same registers and publishes nothing."""

from __future__ import annotations

import time
import uuid

import pytest

from schemas import BlobSource, DocumentUpserted
from services.runtime.blobs import BlobStore
from services.runtime.redis_client import redis_client
from services.runtime.registry import DocumentBusy, DocumentRegistry, WriterLockLost
from services.runtime.settings import Settings


@pytest.fixture
def registry(settings: Settings) -> DocumentRegistry:
    return DocumentRegistry(redis_client(settings), settings.keys, BlobStore(settings))


def test_a_second_writer_waits_then_is_told_the_document_is_busy(registry: DocumentRegistry):
    key = f"t/{uuid.uuid4()}"
    with registry.writing(key):
        started = time.monotonic()
        with pytest.raises(DocumentBusy), registry.writing(key, wait_seconds=0.5):
            pass
        assert time.monotonic() - started >= 0.3  # it waited (redis-py polls every 0.1 s)
    with registry.writing(key, wait_seconds=0.3):  # free again once the first is done
        pass


def test_a_write_longer_than_the_lease_keeps_the_document(registry: DocumentRegistry):
    key = f"t/{uuid.uuid4()}"
    with registry.writing(key, lease_seconds=0.3):
        time.sleep(1.0)  # a long upload: the lease is renewed while the writer works
        with pytest.raises(DocumentBusy), registry.writing(key, wait_seconds=0.2):
            pass
    with registry.writing(key, wait_seconds=0.2):
        pass


def test_a_writer_that_lost_its_lock_publishes_nothing(registry: DocumentRegistry, settings: Settings):
    key = "acme/doc-" + uuid.uuid4().hex
    with registry.writing(key) as lock:
        # Lost as in a failover to a replica that never got the lock: another writer takes the
        # document and publishes its revision.
        redis_client(settings).delete(lock.name)
        with registry.writing(key, wait_seconds=0.2):
            registry.remember(upsert(key, revision=2))
        with pytest.raises(WriterLockLost):
            registry.fence(key)  # what a publisher asks right before it publishes
        with pytest.raises(WriterLockLost):
            registry.remember(upsert(key, revision=3))
    assert registry.newest_upsert(key).revision == 2


def upsert(key: str, revision: int) -> DocumentUpserted:
    tenant, _, document = key.partition("/")
    return DocumentUpserted(tenant_id=tenant, dataset_id="ds", document_id=document, revision=revision, name="n",
                            source=BlobSource(uri="file:///nowhere", size=1))
