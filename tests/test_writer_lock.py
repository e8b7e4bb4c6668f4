"""The document writer lock on a real Redis: a second writer waits, and past its wait is told the
document is busy (never let in); a write that outlasts its lease still ends cleanly."""

from __future__ import annotations

import time
import uuid

import pytest

from services.runtime.blobs import BlobStore
from services.runtime.redis_client import redis_client
from services.runtime.registry import DocumentBusy, DocumentRegistry
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


def test_a_write_that_outlasts_its_lease_still_ends_cleanly(registry: DocumentRegistry):
    key = f"t/{uuid.uuid4()}"
    with registry.writing(key, lease_seconds=0.2):
        time.sleep(0.4)  # the lease is gone: another writer may enter now
        with registry.writing(key, wait_seconds=0.1):
            pass
