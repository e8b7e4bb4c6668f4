"""API keys, as Dify's dataset API has them (``Authorization: Bearer <key>``), each bound to one
tenant. Only a SHA-256 of a key is stored (state Redis hash ``api-keys``), so a copy of Redis does
not give anyone a working key; the key itself is shown once, when it is created."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import orjson
import redis
import redis.asyncio

from schemas.envelope import utc_now
from services.runtime.keys import RedisKeys

PREFIX = "ifx-"


@dataclass(frozen=True)
class ApiKey:
    key_id: str  # the first 12 hex digits of the hash: what `keys list` shows and `keys revoke` takes
    tenant_id: str
    name: str
    created_at: str


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    def __init__(self, client: redis.Redis, keys: RedisKeys):
        self._redis = client
        self._hash = keys.api_keys

    def create(self, tenant_id: str, name: str = "") -> tuple[str, ApiKey]:
        """A new key for the tenant: the key (shown once) and what is stored about it."""
        key = PREFIX + secrets.token_urlsafe(32)
        digest = _digest(key)
        record = ApiKey(digest[:12], tenant_id, name, utc_now().isoformat())
        self._redis.hset(self._hash, digest, orjson.dumps(record.__dict__))
        return key, record

    def tenant_of(self, key: str) -> str | None:
        raw = self._redis.hget(self._hash, _digest(key))
        return orjson.loads(raw)["tenant_id"] if raw is not None else None

    async def tenant_of_async(self, client: redis.asyncio.Redis, key: str) -> str | None:
        """As ``tenant_of``, on the event loop, through ``client``."""
        raw = await client.hget(self._hash, _digest(key))
        return orjson.loads(raw)["tenant_id"] if raw is not None else None

    def list(self) -> list[ApiKey]:
        return sorted((ApiKey(**orjson.loads(raw)) for raw in self._redis.hvals(self._hash)),
                      key=lambda k: (k.tenant_id, k.created_at))

    def revoke(self, key_id: str) -> bool:
        """Revoke the key whose id (or full hash) starts with ``key_id``; False if none or several."""
        matches = [d for d in (f.decode() for f in self._redis.hkeys(self._hash)) if d.startswith(key_id)]
        if len(key_id) < 8 or len(matches) != 1:
            return False
        return bool(self._redis.hdel(self._hash, matches[0]))
