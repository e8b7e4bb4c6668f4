"""The status projector, a stage on the shared consumer loop: folds each status event into its
document's state in Redis and publishes the state, keyed by document, to the state topic. The
loop commits an event's offset only once its state is acknowledged, so a crash republishes, never
skips."""

from __future__ import annotations

import logging

from confluent_kafka import Message

from schemas import STATE, DocumentState, MalformedRecord, Stage
from services.projector.store import StateStore
from services.runtime.handler import Context, Handler
from services.runtime.metrics import STATES_FOLDED
from services.runtime.redis_client import redis_client
from topics.catalog import STAGE_INPUTS
from topics.catalog import STATE as STATE_TOPIC

log = logging.getLogger(__name__)

_NOT_FOLDED = object()  # an event prepare did not fold: handle folds it


class Projector(Handler):
    stage = Stage.PROJECTOR
    inputs = (STAGE_INPUTS[stage],)
    batch_size = 500  # folded together (prepare): large batches keep round trips and commits rare
    fails_documents = False
    checks_revisions = False

    def __init__(self, context: Context):
        super().__init__(context)
        self.store = StateStore(redis_client(context.settings), context.settings.keys)
        self.state_topic = context.settings.topic(STATE_TOPIC.name)
        self._folded: dict[tuple[str, int], DocumentState | None] = {}  # by prepare, for handle
        if indexed := self.store.index_stored():  # states written before the datasets' counts and orders
            log.info("counted and ordered %d document states written before their datasets were", indexed)

    def prepare(self, messages: list[Message]) -> None:
        """Fold the batch's events ahead, each document's state written once (``fold_many``); each
        record's ``handle`` then announces what its event made. A malformed report is left to its
        ``handle``, which keeps it in the DLQ."""
        self._folded = {}  # nothing of an earlier batch: should this fail, handle folds each itself
        events = []
        for message in messages:
            try:
                events.append((self.decode(message, keep=True), message.offset()))
            except MalformedRecord:
                continue
        self._folded = self.store.fold_many(events)

    def handle(self, message: Message) -> None:
        status = self.decode(message)  # a malformed report is kept in the DLQ by the loop
        folded = self._folded.pop((status.key, message.offset()), _NOT_FOLDED)
        state = self.store.fold(status, message.offset()) if folded is _NOT_FOLDED else folded
        if state is not None:
            self.context.producer.send(self.state_topic, status.key, STATE.encode(state))
            STATES_FOLDED.labels(state.status.value).inc()
