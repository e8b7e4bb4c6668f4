"""Vectors already computed, by (model, content hash): unchanged text is never embedded twice."""

from __future__ import annotations

import numpy as np
import redis

from services.embedder.vectors import short_floats
from services.runtime.keys import RedisKeys


class EmbeddingCache:
    def __init__(self, client: redis.Redis, keys: RedisKeys, ttl_seconds: int):
        self._redis = client
        self._keys = keys
        self._ttl = ttl_seconds

    def _key(self, model: str, content_hash: str) -> str:
        return self._keys.embedding(model, content_hash)

    def get_many(self, model: str, hashes: list[str]) -> dict[str, list[float]]:
        if not hashes:
            return {}
        raw = self._redis.mget([self._key(model, h) for h in hashes])
        return {h: short_floats(np.frombuffer(r, dtype="<f4")) for h, r in zip(hashes, raw) if r is not None}

    def put_many(self, model: str, vectors: dict[str, list[float]]) -> None:
        with self._redis.pipeline(transaction=False) as pipe:
            for content_hash, vector in vectors.items():
                pipe.set(self._key(model, content_hash), np.asarray(vector, dtype="<f4").tobytes(), ex=self._ttl)
            pipe.execute()
