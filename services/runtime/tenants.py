"""The tenants with documents (the state Redis's ``tenants`` set): a tenant's keys share a hash slot
of their own, so a sweep or census over every document goes tenant by tenant from here."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import redis

from services.runtime.keys import RedisKeys, by_tenant


class Tenants:
    def __init__(self, client: redis.Redis, keys: RedisKeys):
        self._redis = client
        self._key = keys.tenants
        self._listed: set[str] = set()  # listed by this process already: one SADD per tenant per process

    def enlist(self, tenant_ids: Iterable[str]) -> None:
        """List the tenants before their keys are written, so no sweep misses a tenant's documents."""
        new = set(tenant_ids) - self._listed
        if new:
            self._redis.sadd(self._key, *new)
            self._listed |= new

    def all(self) -> list[str]:
        return sorted(member.decode() for member in self._redis.smembers(self._key))


def fields_of(client: redis.Redis, hash_of: Callable[[str], str], document_keys: Iterable[str]) -> dict[str, bytes]:
    """Document key -> its field in its tenant's hash ``hash_of(tenant)``, in one round trip whatever
    the tenants (one HMGET each, pipelined); documents without one are left out."""
    grouped = by_tenant(document_keys, str)
    if not grouped:
        return {}
    with client.pipeline(transaction=False) as pipe:
        for tenant_id, keys in grouped.items():
            pipe.hmget(hash_of(tenant_id), keys)
        found = pipe.execute()
    return {key: value for keys, values in zip(grouped.values(), found) for key, value in zip(keys, values)
            if value is not None}
