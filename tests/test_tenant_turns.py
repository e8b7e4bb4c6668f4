"""A batch in hand gives way to a tenant whose record arrived after it was taken, on the real
broker: a long batch of one tenant's records holds another tenant for about a second, not for
the rest of the batch (the read-ahead's turns alone only start at the next batch)."""

from __future__ import annotations

import threading
import time

import schemas
from schemas import Stage
from services.runtime.handler import Handler
from services.runtime.loop import ConsumerLoop
from services.runtime.settings import Settings
from tests.support.kafka import produce
from tests.test_runtime_errors import upsert
from tests.test_runtime_faults import run_until
from topics.catalog import DOCUMENTS


class SlowRecords(Handler):
    stage = Stage.EXTRACTOR
    inputs = (DOCUMENTS,)
    batch_size = 20
    batches: list[int] = []
    handled: list[str] = []
    first_handled = threading.Event()

    def prepare(self, messages):
        SlowRecords.batches.append(len(messages))

    def handle(self, message):
        time.sleep(0.3)
        SlowRecords.handled.append(schemas.DOCUMENT_EVENTS.decode(message.value()).name)
        SlowRecords.first_handled.set()


def test_a_batch_gives_way_to_a_tenant_that_arrived_after_it_was_taken(pipeline_topics: Settings):
    settings = pipeline_topics
    topic = settings.topic(DOCUMENTS.name)
    produce(settings, topic, [(b"large/doc", upsert(f"large-{i}", "doc")) for i in range(20)])
    loop = ConsumerLoop(settings, SlowRecords)

    def publish_small_once_working():
        SlowRecords.first_handled.wait(60)
        produce(settings, topic, [(b"small/doc", upsert("small", "doc"))])

    threading.Thread(target=publish_small_once_working, daemon=True).start()
    worker = run_until(loop, lambda: len(SlowRecords.handled) >= 21, timeout=90)
    assert not worker.is_alive()
    first_batch = SlowRecords.batches[0]
    assert first_batch >= 10, f"the first batch took only {first_batch} of the large tenant's records"
    assert sorted(SlowRecords.handled) == sorted(["small", *(f"large-{i}" for i in range(20))])
    # Without giving way, "small" would wait for the whole first batch (6 s of work here).
    assert SlowRecords.handled.index("small") < first_batch, SlowRecords.handled
