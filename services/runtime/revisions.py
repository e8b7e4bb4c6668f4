"""Which records of a document are still worth processing, shared by every stage through Redis.

Each document has a newest known revision (upserts and deletes raise it), and may be closed
(cancelled, or failed at some stage) or paused at a revision. A record of an older revision is
stale and dropped, so an update that arrives mid-flight wins; a record of a closed revision is
dropped; a record of a paused revision is parked in Redis until the document is resumed.

Revision numbers are issued at or above the current time in milliseconds, so they keep growing
even if this state is lost (a Redis restored from an old snapshot, a flushed instance): a
re-created document can never be handed a revision its old chunks already carry."""

from __future__ import annotations

import time
from enum import Enum

import orjson
import redis

from schemas import Envelope
from schemas.envelope import MAX_REVISION
from services.runtime.errors import PermanentError
from services.runtime.keys import RedisKeys, per_tenant, tenant_of_key

# Raise the newest revision if this one is newer; answer the newest afterwards. Atomic.
_OBSERVE = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
local seen = tonumber(ARGV[2])
if seen > current then redis.call('HSET', KEYS[1], ARGV[1], seen); return seen end
return current
"""

# Records' verdicts in one round trip, per (document key, revision) in ARGV from 2: each revision
# observed (as _OBSERVE) unless only looked at (ARGV[1] = '0'); then "stale", "closed", "paused" or
# "current".
_VERDICTS = """
local verdicts = {}
for i = 2, #ARGV, 2 do
  local key, revision = ARGV[i], tonumber(ARGV[i + 1])
  local current = tonumber(redis.call('HGET', KEYS[1], key) or '-1')
  if ARGV[1] == '1' and revision > current then redis.call('HSET', KEYS[1], key, ARGV[i + 1]) end
  local verdict = 'current'
  if revision < current then
    verdict = 'stale'
  else
    local closed = redis.call('HGET', KEYS[2], key)
    local paused = redis.call('HGET', KEYS[3], key)
    if closed and tonumber(closed) >= revision then
      verdict = 'closed'
    elseif paused and tonumber(paused) >= revision then
      verdict = 'paused'
    end
  end
  verdicts[#verdicts + 1] = verdict
end
return verdicts
"""

# The next revision: above what was handed out, what any producer published, and the clock; -1,
# with nothing handed out, when that passes the contract's largest revision (ARGV[3]).
_NEXT = """
local issued = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local seen = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local next = math.max(issued + 1, seen + 1, tonumber(ARGV[2]))
if next > tonumber(ARGV[3]) then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], next)
return next
"""

# Park the record only if the document is still paused at its revision; otherwise say so, and
# the caller processes it. One step, so a resume can never slip between the check and the park.
_PARK = """
local paused = redis.call('HGET', KEYS[1], ARGV[1])
if paused and tonumber(paused) >= tonumber(ARGV[2]) then
  redis.call('RPUSH', KEYS[2], ARGV[3])
  return 1
end
return 0
"""

# Lift the pause and hand back what was parked. The list itself is only trimmed by
# ``forget_parked`` once the records are re-published, so a crash in between loses nothing.
_RESUME = """
redis.call('HDEL', KEYS[1], ARGV[1])
return redis.call('LRANGE', KEYS[2], 0, -1)
"""


class RevisionsExhausted(PermanentError):
    """A producer published the largest revision there is: nothing can come after it."""


class Verdict(Enum):
    CURRENT = "current"
    STALE = "stale"
    CLOSED = "closed"
    PAUSED = "paused"


class Revisions:
    def __init__(self, client: redis.Redis, keys: RedisKeys):
        self._redis = client
        self._keys = keys
        self._observe = client.register_script(_OBSERVE)
        self._verdicts = client.register_script(_VERDICTS)
        self._next = client.register_script(_NEXT)
        self._park = client.register_script(_PARK)
        self._resume = client.register_script(_RESUME)

    def next_revision(self, key: str) -> int:
        now_ms = int(time.time() * 1000)
        tenant_id = tenant_of_key(key)
        issued = int(self._next(keys=[self._keys.revisions_issued(tenant_id), self._keys.revisions_latest(tenant_id)],
                                args=[key, now_ms, MAX_REVISION]))
        if issued < 0:
            raise RevisionsExhausted(
                f"{key} is at revision {self.latest(key)}, and the contract's largest is {MAX_REVISION}: "
                "no newer revision can be issued; delete the document and create it under a new id"
            )
        return issued

    def latest(self, key: str) -> int | None:
        """The newest revision handed out or seen for the document, if any."""
        tenant_id = tenant_of_key(key)
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(self._keys.revisions_issued(tenant_id), key)
            pipe.hget(self._keys.revisions_latest(tenant_id), key)
            known = [int(v) for v in pipe.execute() if v is not None]
        return max(known) if known else None

    def check(self, event: Envelope) -> Verdict:
        """Record ``event``'s revision and say whether its work should go on."""
        return self.verdict(event.key, event.revision, observe=True)

    def verdict(self, key: str, revision: int, observe: bool = False) -> Verdict:
        return self.verdicts([(key, revision)], observe)[0]

    def verdicts(self, records: list[tuple[str, int]], observe: bool = False) -> list[Verdict]:
        """``verdict`` of each (document key, revision), in one round trip per tenant."""
        def judge(tenant_id: str, of_tenant: list[tuple[str, int]]) -> list[Verdict]:
            keys = [self._keys.revisions_latest(tenant_id), self._keys.revisions_closed(tenant_id),
                    self._keys.revisions_paused(tenant_id)]
            args = [int(observe), *(value for record in of_tenant for value in record)]
            return [Verdict(verdict.decode()) for verdict in self._verdicts(keys=keys, args=args)]

        return per_tenant(records, lambda record: record[0], judge)

    def close(self, event: Envelope) -> None:
        """No more work on this revision or any older one (cancelled, or failed at some stage). Only
        ever raised: a late failure of an older revision must not reopen a newer closed one."""
        self._observe(keys=[self._keys.revisions_closed(event.tenant_id)], args=[event.key, event.revision])

    def pause(self, event: Envelope) -> None:
        self._redis.hset(self._keys.revisions_paused(event.tenant_id), event.key, event.revision)

    def park(self, key: str, revision: int, topic: str, record_key: bytes | None, value: bytes) -> bool:
        """Keep a paused document's record until it is resumed; False if it is no longer paused."""
        record = orjson.dumps({"topic": topic, "key": record_key.decode() if record_key else None, "value": value.decode()})
        parked = self._park(keys=[self._keys.revisions_paused(tenant_of_key(key)), self._keys.parked(key)],
                            args=[key, revision, record])
        return bool(parked)

    def resume(self, event: Envelope) -> list[tuple[str, bytes | None, bytes]]:
        """Lift the pause and return the parked records (topic, key, value), oldest first. Call
        ``forget_parked`` with their count once they are re-published."""
        parked = self._resume(keys=[self._keys.revisions_paused(event.tenant_id), self._keys.parked(event.key)],
                              args=[event.key])
        records = [orjson.loads(raw) for raw in parked]
        return [(r["topic"], r["key"].encode() if r["key"] else None, r["value"].encode()) for r in records]

    def forget_parked(self, event: Envelope, count: int) -> None:
        if count:
            self._redis.ltrim(self._keys.parked(event.key), count, -1)
