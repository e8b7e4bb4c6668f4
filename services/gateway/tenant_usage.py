"""What each tenant holds: its documents and their bytes (a text's UTF-8, an upload's size), kept in
the state Redis as each write and delete goes through the gateway. A write takes its room
atomically with the check, so concurrent writes never pass a limit together. Documents written by
gateways before this count was kept are not in it."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from services.runtime.keys import RedisKeys

# KEYS[1] the tenant's usage; ARGV: document id, its new size, most documents, most bytes.
# Answers {1, previous size or -1 for a new document}, {0, "documents"} or {0, "bytes"}.
# A document that does not grow always fits (an operator may have lowered a limit below use).
_TAKE = """
local field = 'doc:' .. ARGV[1]
local before = redis.call('HGET', KEYS[1], field)
local documents = tonumber(redis.call('HGET', KEYS[1], 'documents') or '0')
local bytes = tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0')
local size = tonumber(ARGV[2])
local previous = -1
if before then
  previous = tonumber(before)
  bytes = bytes - previous
else
  documents = documents + 1
  if documents > tonumber(ARGV[3]) then return {0, 'documents'} end
end
if size > math.max(previous, 0) and bytes + size > tonumber(ARGV[4]) then return {0, 'bytes'} end
redis.call('HSET', KEYS[1], field, size, 'documents', documents, 'bytes', bytes + size)
return {1, previous}
"""

# KEYS[1] the tenant's usage; ARGV[1] the document id: its room given back.
_GIVE_BACK = """
local field = 'doc:' .. ARGV[1]
local before = redis.call('HGET', KEYS[1], field)
if not before then return 0 end
redis.call('HDEL', KEYS[1], field)
redis.call('HINCRBY', KEYS[1], 'documents', -1)
redis.call('HINCRBY', KEYS[1], 'bytes', 0 - tonumber(before))  -- not -x: Lua's -0 is no integer to Redis
return 1
"""

_UNBOUNDED = 2**62


@dataclass(frozen=True)
class Usage:
    documents: int
    bytes: int


class UsageRefused(Exception):
    def __init__(self, limit: str):
        super().__init__(limit)
        self.limit = limit  # "documents" or "bytes"


class TenantUsage:
    def __init__(self, client: redis.Redis, keys: RedisKeys):
        self._redis = client
        self._keys = keys
        self._take = client.register_script(_TAKE)
        self._give_back = client.register_script(_GIVE_BACK)

    def take(self, tenant_id: str, document_id: str, size: int, max_documents: int, max_bytes: int) -> int | None:
        """Room for the document at ``size`` bytes (a new one counts as one more document): its
        previous size (None: it is new), or ``UsageRefused`` naming the limit it would pass."""
        taken, value = self._take(keys=[self._keys.tenant_usage(tenant_id)],
                                  args=[document_id, size, max_documents, max_bytes])
        if not taken:
            raise UsageRefused(value.decode() if isinstance(value, bytes) else value)
        return None if value == -1 else int(value)

    def restore(self, tenant_id: str, document_id: str, previous: int | None) -> None:
        """Undo a ``take`` whose write did not happen."""
        if previous is None:
            self.give_back(tenant_id, document_id)
        else:
            self.take(tenant_id, document_id, previous, _UNBOUNDED, _UNBOUNDED)

    def give_back(self, tenant_id: str, document_id: str) -> None:
        """The document is deleted: it holds nothing any more."""
        self._give_back(keys=[self._keys.tenant_usage(tenant_id)], args=[document_id])

    def of(self, tenant_id: str) -> Usage:
        documents, stored = self._redis.hmget(self._keys.tenant_usage(tenant_id), ["documents", "bytes"])
        return Usage(int(documents or 0), int(stored or 0))
