"""A faust-streaming app over the status topic: folds each event into its document's state, keeps
the state in Redis (not a faust Table: table recovery misreads the embedded broker's end offsets)
and publishes it, keyed by document, to the state topic."""

from __future__ import annotations

import asyncio
import logging

import faust

from schemas import DEAD_LETTERS, STATE, STATUS, DeadLetter, DocumentState, MalformedRecord, StatusEvent
from services.projector.store import StateStore
from services.runtime.blobs import BlobStore
from services.runtime.dead_letters import kept_original
from services.runtime.errors import as_outage
from services.runtime.heartbeat import BEAT_EVERY_SECONDS, Heartbeat
from services.runtime.kafka import faust_credentials
from services.runtime.redis_client import redis_client
from services.runtime.settings import Settings
from topics.catalog import DLQ
from topics.catalog import STATE as STATE_TOPIC
from topics.catalog import STATUS as STATUS_TOPIC

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> faust.App:
    app = faust.App(
        settings.group("projector"),
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap_servers.split(",")],
        broker_credentials=faust_credentials(settings),
        store="memory://",
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_allow_declare=False,  # topics come from `indexflow topics apply`
        topic_disable_leader=True,
        broker_session_timeout=settings.session_timeout_ms / 1000,
        broker_heartbeat_interval=settings.session_timeout_ms / 3000,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
    )
    status_topic = app.topic(settings.topic(STATUS_TOPIC.name), key_type=bytes, value_type=bytes, value_serializer="raw")
    state_topic = app.topic(settings.topic(STATE_TOPIC.name), key_type=bytes, value_type=bytes, value_serializer="raw")
    dlq_topic = app.topic(settings.topic(DLQ.name), key_type=bytes, value_type=bytes, value_serializer="raw")
    store = StateStore(redis_client(settings), settings.keys)
    blobs = BlobStore(settings)
    heartbeat = Heartbeat(redis_client(settings), settings.keys, "projector")

    @app.timer(BEAT_EVERY_SECONDS)
    async def beat():
        await asyncio.to_thread(heartbeat.beat)

    @app.agent(status_topic)
    async def project(stream):
        async for event in stream.events():
            message = event.message
            try:
                status = STATUS.decode(event.value)
            except MalformedRecord as exc:
                original = await asyncio.to_thread(
                    kept_original, blobs, message.topic, message.partition, message.offset, event.value
                )
                letter = DeadLetter(
                    stage="projector", error=str(exc), error_type=type(exc).__name__, attempts=1,
                    source_topic=message.topic, source_partition=message.partition, source_offset=message.offset,
                    source_key=event.key.decode("utf-8", "replace") if event.key else None, **original,
                )
                await dlq_topic.send(key=event.key, value=DEAD_LETTERS.encode(letter))
                continue
            state = await _project(store, status, message.offset)
            if state is None:
                continue
            # Awaiting the delivery keeps the offset uncommitted until the state is published.
            await (await state_topic.send(key=status.key.encode(), value=STATE.encode(state)))

    return app


async def _project(store: StateStore, status: StatusEvent, offset: int) -> DocumentState | None:
    """Fold the event into the stored state. Redis calls run off the event loop (it carries the
    consumer's heartbeats), and an outage is waited out: an event is never skipped."""
    backoff = 0.2
    while True:
        try:
            return await asyncio.to_thread(store.fold, status, offset)
        except Exception as exc:  # noqa: BLE001 - anything but an outage is a bug worth crashing on
            if as_outage(exc) is None:
                raise
            log.warning("state Redis unavailable (%s); retrying in %.1fs", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
