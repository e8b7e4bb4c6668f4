"""Read the DLQ and send dead letters back. A letter that names its document re-drives the document
(a new revision from its newest upsert, as a user's retry does): the revision it failed in is
closed and retracted, so its one record alone could not run again. A letter too broken to name a
document goes back to its source topic byte for byte (key and headers included), for a consumer
that has been fixed meanwhile. Each letter is replayed once; the state Redis remembers which."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

import orjson
import redis

from schemas import DEAD_LETTERS, DeadLetter, DocumentStatus, MalformedRecord, Priority, document_key
from schemas.envelope import utc_now
from services.projector.store import StateStore
from services.runtime.blobs import BlobStore
from services.runtime.keys import RedisKeys
from services.runtime.producer import Producer
from services.runtime.registry import DocumentRegistry, redrive
from services.runtime.replay import TopicReader
from services.runtime.revisions import Revisions
from services.runtime.status import StatusEmitter


@dataclass(frozen=True)
class Letter:
    position: str  # "partition:offset" in the DLQ topic
    letter: DeadLetter

    @property
    def document(self) -> str | None:
        if self.letter.tenant_id is None or self.letter.document_id is None:
            return None
        return document_key(self.letter.tenant_id, self.letter.document_id)


@dataclass(frozen=True)
class Outcome:
    letter: str
    action: Literal["redriven", "republished", "skipped"]
    detail: str


def read_letters(reader: TopicReader) -> Iterator[Letter]:
    """Every dead letter in the DLQ topic, oldest first per partition (unreadable ones are skipped:
    the DLQ is written by this project's own code)."""
    for message in reader.read():
        try:
            yield Letter(f"{message.partition()}:{message.offset()}", DEAD_LETTERS.decode(message.value()))
        except MalformedRecord:
            continue


def replayed(client: redis.Redis, keys: RedisKeys, letters: Iterable[Letter]) -> dict[str, dict]:
    """When and how each of ``letters`` was replayed before, by position (absent: never). Kept by
    the letter's own id: positions start again when a topic is made anew (the embedded broker's
    memory storage), ids do not."""
    letters = list(letters)
    found = client.hmget(keys.dlq_replayed, [str(x.letter.event_id) for x in letters]) if letters else []
    return {x.position: orjson.loads(raw) for x, raw in zip(letters, found) if raw is not None}


class DeadLetterReplay:
    def __init__(
        self, client: redis.Redis, keys: RedisKeys, registry: DocumentRegistry, revisions: Revisions,
        states: StateStore, producer: Producer, status: StatusEmitter, blobs: BlobStore,
    ):
        self.redis = client
        self.keys = keys
        self.registry = registry
        self.revisions = revisions
        self.states = states
        self.producer = producer
        self.status = status
        self.blobs = blobs

    def replay(self, letters: list[Letter]) -> list[Outcome]:
        before = replayed(self.redis, self.keys, letters)
        redriven: dict[str, str] = {}  # document -> the letter that re-drove it in this run
        outcomes = []
        for letter in letters:
            if letter.position in before:
                outcome = Outcome(letter.position, "skipped", f"replayed before, at {before[letter.position]['at']}")
            elif letter.document is None:
                outcome = self._republish(letter)
            elif letter.document in redriven:
                by = redriven[letter.document]
                outcome = Outcome(letter.position, "skipped", f"document re-driven by letter {by}")
            else:
                outcome = self._redrive(letter)
                if outcome.action == "redriven":
                    redriven[letter.document] = letter.position
            if outcome.action != "skipped":
                self.redis.hset(self.keys.dlq_replayed, str(letter.letter.event_id),
                                orjson.dumps({"at": utc_now().isoformat(), "action": outcome.action}))
            outcomes.append(outcome)
        self.producer.flush()
        return outcomes

    def _redrive(self, letter: Letter) -> Outcome:
        state = self.states.get(letter.document)
        if state is None or state.status is not DocumentStatus.ERROR:
            now = "unknown" if state is None else f"{state.status.value} at revision {state.revision}"
            return Outcome(letter.position, "skipped", f"the document is {now}: nothing to replay")
        if letter.letter.revision is not None and state.revision > letter.letter.revision:
            return Outcome(letter.position, "skipped", f"the document failed again at revision {state.revision}; "
                                                       "replay that letter")
        again = redrive(self.registry, self.revisions, self.producer, self.status, letter.document,
                        priority=Priority.BULK)
        if again is None:
            return Outcome(letter.position, "skipped", "no upsert of the document is known (deleted?)")
        return Outcome(letter.position, "redriven", f"revision {again.revision}, attempt {again.attempt}")

    def _republish(self, letter: Letter) -> Outcome:
        dead = letter.letter
        value = dead.inline_value
        if value is None:
            value = self.blobs.get_dead_letter(dead.source_value_uri)
        headers = [(name, base64.b64decode(encoded)) for name, encoded in dead.source_headers]
        key = dead.source_key.encode() if dead.source_key is not None else None
        self.producer.send(dead.source_topic, key, value, headers=headers or None)
        return Outcome(letter.position, "republished", dead.source_topic)
