"""A stage on the real runtime for the runtime tests: copies each input record to an output topic,
noting which worker handled which input partition/offset and when.

Run as ``python -m tests.support.echo_service``; ECHO_WORKER names it, ECHO_DELAY slows it,
ECHO_LANED=1 reads a topic with a bulk lane."""

from __future__ import annotations

import os
import time

import orjson
from confluent_kafka import Message

from schemas import Codec, Stage
from services.runtime.handler import Handler
from services.runtime.loop import run_handler
from topics import TopicSpec

ECHO_IN = TopicSpec("echo-in", Codec("echo", dict), "runtime test input")
ECHO_OUT = TopicSpec("echo-out", Codec("echo", dict), "runtime test output")
ECHO_LANED_IN = TopicSpec("echo-laned", Codec("echo", dict), "runtime test input, two lanes", laned=True)


class Echo(Handler):
    stage = Stage.INDEXER  # any stage: the group id is the topic prefix (unique per test) + stage
    inputs = (ECHO_IN,)
    batch_size = 10

    def handle(self, message: Message) -> None:
        time.sleep(float(os.environ.get("ECHO_DELAY", "0")))
        out = {
            "worker": os.environ.get("ECHO_WORKER", "?"),
            "partition": message.partition(),
            "topic": message.topic(),
            "offset": message.offset(),
            "at": time.time(),
        }
        settings = self.context.settings
        self.context.producer.send(settings.topic(ECHO_OUT.name), message.key(), orjson.dumps(out))


class LanedEcho(Echo):
    inputs = (ECHO_LANED_IN,)


if __name__ == "__main__":
    run_handler(LanedEcho if os.environ.get("ECHO_LANED") == "1" else Echo)
