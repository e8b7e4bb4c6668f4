"""The status projector, a stage on the shared consumer loop: folds each status event into its
document's state in Redis and publishes the state, keyed by document, to the state topic. The
loop commits an event's offset only once its state is acknowledged, so a crash republishes, never
skips."""

from __future__ import annotations

import logging

from confluent_kafka import Message

from schemas import STATE, STATUS, Stage
from services.projector.store import StateStore
from services.runtime.handler import Context, Handler
from services.runtime.metrics import STATES_FOLDED
from services.runtime.redis_client import redis_client
from topics.catalog import STAGE_INPUTS
from topics.catalog import STATE as STATE_TOPIC

log = logging.getLogger(__name__)


class Projector(Handler):
    stage = Stage.PROJECTOR
    inputs = (STAGE_INPUTS[stage],)
    batch_size = 500  # a fold is a few Redis round trips: large batches keep commits rare
    fails_documents = False

    def __init__(self, context: Context):
        super().__init__(context)
        self.store = StateStore(redis_client(context.settings), context.settings.keys)
        self.state_topic = context.settings.topic(STATE_TOPIC.name)
        if indexed := self.store.index_stored():  # states written before the datasets' counts and orders
            log.info("counted and ordered %d document states written before their datasets were", indexed)

    def handle(self, message: Message) -> None:
        status = STATUS.decode(message.value())  # a malformed report is kept in the DLQ by the loop
        state = self.store.fold(status, message.offset())
        if state is not None:
            self.context.producer.send(self.state_topic, status.key, STATE.encode(state))
            STATES_FOLDED.labels(state.status.value).inc()
