"""The records the state Redis keeps per document (registered upserts, states) are packed: their JSON
deflated against a dictionary of what such a record looks like. A deployment's records from before
packing (JSON) stay readable by every reader and every script, and are packed as they are written
again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from schemas import (
    DOCUMENT_EVENTS, STATE, DocumentState, DocumentStatus, DocumentUpserted, InlineSource, Stage, StatusEvent,
)
from services.projector.store import StateStore
from services.runtime.blobs import BlobStore
from services.runtime.keys import RedisKeys
from services.runtime.packing import REGISTERED, STATES
from services.runtime.redis_client import redis_client
from services.runtime.registry import DocumentRegistry
from services.runtime.settings import Settings

TEXT = ("Refunds are issued to the original payment method within five business days of the return "
        "being received at the warehouse, and a confirmation mail is sent once the refund is on its way.")


def completed_state(document_id: str) -> DocumentState:
    at = datetime(2026, 12, 7, 1, 2, 3, 456789, tzinfo=UTC)
    return DocumentState(
        tenant_id="acme", dataset_id="tickets", document_id=document_id, revision=1_765_000_000_123,
        name="ticket-17.txt", content_hash="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        status=DocumentStatus.COMPLETED, stage=Stage.INDEXER, progress=1.0, segment_count=1, token_count=41,
        word_count=33, attempts=1, indexing_latency=0.87, searchable_revision=1_765_000_000_123, updated_at=at,
        transitions={s: at + timedelta(milliseconds=90 * n) for n, s in enumerate(
            (DocumentStatus.WAITING, DocumentStatus.PARSING, DocumentStatus.SPLITTING, DocumentStatus.INDEXING,
             DocumentStatus.COMPLETED))})


def upsert(document_id: str, revision: int) -> DocumentUpserted:
    return DocumentUpserted(tenant_id="acme", dataset_id="tickets", document_id=document_id, revision=revision,
                            name="ticket-17.txt", source=InlineSource(text=TEXT),
                            content_hash="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")


def test_a_completed_state_and_a_small_upsert_pack_to_a_fraction_of_their_json():
    document = str(uuid.uuid4())
    state = STATE.encode(completed_state(document))
    packed = STATES.pack(f"acme/{document}", 1_765_000_000_123, state)
    assert STATES.unpack(f"acme/{document}", packed) == state
    assert document.encode() not in packed and len(packed) < len(state) / 4, (len(packed), len(state))
    registered = DOCUMENT_EVENTS.encode_compact(upsert(document, 7))
    packed = REGISTERED.pack(f"acme/{document}", 7, registered)
    assert REGISTERED.unpack(f"acme/{document}", packed) == registered
    assert len(packed) < len(registered) * 0.6, (len(packed), len(registered))


def test_a_document_id_left_out_of_a_packed_record_comes_back_from_its_key_alone():
    """Metadata may hold a field named like the envelope's, even with the same id or none at all."""
    document = upsert("d-1", 7)
    for metadata in ({"document_id": "d-1"}, {"document_id": ""}, {"x": '"document_id":""'}):
        raw = DOCUMENT_EVENTS.encode_compact(document.model_copy(update={"metadata": metadata}))
        assert REGISTERED.unpack("acme/d-1", REGISTERED.pack("acme/d-1", 7, raw)) == raw


@pytest.fixture
def keys(stack_settings: Settings) -> RedisKeys:
    return RedisKeys(f"p{uuid.uuid4().hex[:8]}.")


def test_records_kept_as_json_before_packing_are_read_and_judged_by_every_script(
    stack_settings: Settings, keys: RedisKeys, tmp_path,
):
    client = redis_client(stack_settings)
    registry = DocumentRegistry(client, keys, BlobStore(stack_settings.model_copy(update={"state_dir": tmp_path})))
    store = StateStore(client, keys)
    client.sadd(keys.tenants, "acme")
    client.hset(keys.documents("acme"), "acme/old", DOCUMENT_EVENTS.encode_compact(upsert("old", 7)))
    client.zadd(keys.unfinished("acme"), {"acme/old": 0})
    state = completed_state("old").model_copy(update={"revision": 7, "searchable_revision": 7})
    client.hset(keys.states("acme"), "acme/old", STATE.encode(state))

    assert registry.newest_upsert("acme/old").revision == 7
    assert store.get("acme/old") == state and store.status_totals() == {"completed": 1}  # counted from JSON
    registry.remember(upsert("old", 6))  # older than the JSON one: refused by reading its revision
    assert registry.newest_upsert("acme/old").revision == 7
    registry.finished([("acme/old", 7)])
    assert client.zscore(keys.unfinished("acme"), "acme/old") is None
    registry.remember(upsert("old", 8))  # newer: written, packed
    assert client.hget(keys.documents("acme"), "acme/old").startswith(b"\x018:")
    assert registry.newest_upsert("acme/old").revision == 8

    folded = store.fold(StatusEvent(tenant_id="acme", dataset_id="tickets", document_id="old", revision=8,
                                    status=DocumentStatus.WAITING, stage=Stage.GATEWAY), position=3)
    assert folded.status is DocumentStatus.WAITING and folded.searchable_revision == 7  # folded onto the JSON one
    assert client.hget(keys.states("acme"), "acme/old").startswith(b"{")  # in flight: written again soon
    done = store.fold(StatusEvent(tenant_id="acme", dataset_id="tickets", document_id="old", revision=8,
                                  status=DocumentStatus.COMPLETED, stage=Stage.INDEXER, progress=1.0), position=4)
    assert client.hget(keys.states("acme"), "acme/old").startswith(b"\x018:")  # final: packed
    assert store.get("acme/old") == done and store.as_json(["acme/old"])[0]["status"] == "completed"
