"""Which revision of each document search serves, kept by the indexer itself (state Redis hash
``serving``): it names a revision once all its chunks are written and before older ones are
removed, and withdraws it when it removes that revision's chunks. Search reads it directly, so
there is no moment, while the projector catches up, when an update's document has no servable
chunks (new ones not yet named, old ones gone)."""

from __future__ import annotations

from collections.abc import Iterable

import redis

from services.runtime.keys import RedisKeys, by_tenant, tenant_of_key
from services.runtime.tenants import fields_of

# Per (document key, revision) in ARGV: serve the revision unless a newer one is served.
_PUBLISH = """
for i = 1, #ARGV, 2 do
  local current = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '-1')
  if tonumber(ARGV[i + 1]) > current then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
"""
# Withdrawn is 0 (no revision is 0), not absent: absent means "indexed before this record
# existed", for which search asks the projected state, and that may still name the revision
# whose chunks were just deleted (they stay visible until Elasticsearch's next refresh).
_WITHDRAWN = 0
_WITHDRAW = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current or tonumber(current) <= tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
"""


class ServingRevisions:
    def __init__(self, client: redis.Redis, keys: RedisKeys):
        self._redis = client
        self._keys = keys
        self._publish = client.register_script(_PUBLISH)
        self._withdraw = client.register_script(_WITHDRAW)

    def publish(self, document_key: str, revision: int) -> None:
        """Serve ``revision`` (never going back to an older one)."""
        self.publish_many([(document_key, revision)])

    def publish_many(self, revisions: list[tuple[str, int]]) -> None:
        """``publish`` of each (document key, revision), in one round trip per tenant."""
        for tenant_id, pairs in by_tenant(revisions, lambda pair: pair[0]).items():
            self._publish(keys=[self._keys.serving_revisions(tenant_id)],
                          args=[value for pair in pairs for value in pair])

    def withdraw(self, document_key: str, revision: int) -> None:
        """Serve nothing of the document, if what it served is ``revision`` or older."""
        self._withdraw(keys=[self._keys.serving_revisions(tenant_of_key(document_key))],
                       args=[document_key, revision, _WITHDRAWN])

    def serving(self, document_keys: Iterable[str]) -> dict[str, int]:
        """Document key -> revision served (0: none); documents never recorded are absent."""
        return {key: int(value) for key, value in fields_of(self._redis, self._keys.serving_revisions,
                                                            document_keys).items()}
