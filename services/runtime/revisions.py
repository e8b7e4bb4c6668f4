"""Which records of a document are still worth processing, shared by every stage through Redis.

Each document has a newest known revision (upserts and deletes raise it), and may be cancelled
or paused at a revision. A record of an older revision is stale and dropped, so an update that
arrives mid-flight wins; a record of a cancelled revision is dropped; a record of a paused
revision is parked in Redis until the document is resumed."""

from __future__ import annotations

from enum import Enum

import orjson
import redis

from schemas import Envelope

_LATEST = "revision:latest"
_CANCELLED = "revision:cancelled"
_PAUSED = "revision:paused"

# Raise the newest revision if this one is newer; answer the newest afterwards. Atomic.
_OBSERVE = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
local seen = tonumber(ARGV[2])
if seen > current then redis.call('HSET', KEYS[1], ARGV[1], seen); return seen end
return current
"""


# The next revision of a document: above both what was handed out and what any producer published.
_NEXT = """
local issued = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local seen = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local next = math.max(issued, seen) + 1
redis.call('HSET', KEYS[1], ARGV[1], next)
return next
"""
_ISSUED = "revision:issued"


class Verdict(Enum):
    CURRENT = "current"
    STALE = "stale"
    CANCELLED = "cancelled"
    PAUSED = "paused"


class Revisions:
    def __init__(self, client: redis.Redis, namespace: str):
        self._redis = client
        self._ns = namespace  # the topic prefix: deployments sharing a Redis stay apart
        self._observe = client.register_script(_OBSERVE)
        self._next = client.register_script(_NEXT)

    def _key(self, name: str) -> str:
        return f"{self._ns}{name}"

    def next_revision(self, key: str) -> int:
        return int(self._next(keys=[self._key(_ISSUED), self._key(_LATEST)], args=[key]))

    def known(self, key: str) -> bool:
        return self._redis.hexists(self._key(_ISSUED), key) or self._redis.hexists(self._key(_LATEST), key)

    def check(self, event: Envelope) -> Verdict:
        """Record ``event``'s revision and say whether its work should go on."""
        latest = int(self._observe(keys=[self._key(_LATEST)], args=[event.key, event.revision]))
        if event.revision < latest:
            return Verdict.STALE
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(self._key(_CANCELLED), event.key)
            pipe.hget(self._key(_PAUSED), event.key)
            cancelled, paused = pipe.execute()
        if cancelled is not None and int(cancelled) >= event.revision:
            return Verdict.CANCELLED
        if paused is not None and int(paused) >= event.revision:
            return Verdict.PAUSED
        return Verdict.CURRENT

    def cancel(self, event: Envelope) -> None:
        self._redis.hset(self._key(_CANCELLED), event.key, event.revision)

    def pause(self, event: Envelope) -> None:
        self._redis.hset(self._key(_PAUSED), event.key, event.revision)

    def park(self, key: str, topic: str, record_key: bytes | None, value: bytes) -> None:
        """Keep a paused document's record until it is resumed."""
        record = {"topic": topic, "key": record_key.decode() if record_key else None, "value": value.decode()}
        self._redis.rpush(self._key(f"parked:{key}"), orjson.dumps(record))

    def resume(self, event: Envelope) -> list[tuple[str, bytes | None, bytes]]:
        """Lift the pause and hand back the parked records (topic, key, value), oldest first."""
        parked_key = self._key(f"parked:{event.key}")
        with self._redis.pipeline() as pipe:
            pipe.hdel(self._key(_PAUSED), event.key)
            pipe.lrange(parked_key, 0, -1)
            pipe.delete(parked_key)
            _, parked, _ = pipe.execute()
        records = [orjson.loads(raw) for raw in parked]
        return [(r["topic"], r["key"].encode() if r["key"] else None, r["value"].encode()) for r in records]
