"""Document states in the state Redis: one hash of states, and one set of document keys per dataset."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import orjson
import redis

from schemas import STATE, DocumentState
from services.runtime.keys import RedisKeys


class StateStore:
    def __init__(self, client: redis.Redis, keys: RedisKeys):
        self._redis = client
        self._keys = keys
        self.states = keys.states

    def ping(self) -> bool:
        return bool(self._redis.ping())

    def get(self, key: str) -> DocumentState | None:
        raw = self._redis.hget(self.states, key)
        return STATE.decode(raw) if raw is not None else None

    def get_many(self, keys: Iterable[str]) -> list[DocumentState]:
        keys = list(keys)
        raws = self._redis.hmget(self.states, keys) if keys else []
        return [STATE.decode(raw) for raw in raws if raw is not None]

    def searchable_revisions(self, keys: Iterable[str]) -> dict[str, int]:
        """The revision search may serve, per document key (documents serving none are absent)."""
        return {s.key: s.searchable_revision for s in self.get_many(keys) if s.searchable_revision is not None}

    def dataset(self, tenant_id: str, dataset_id: str) -> list[DocumentState]:
        keys = sorted(k.decode() for k in self._redis.smembers(self._keys.dataset(tenant_id, dataset_id)))
        return [s for s in self.get_many(keys) if s.dataset_id == dataset_id]

    def count_by_status(self) -> dict[str, int]:
        return dict(Counter(orjson.loads(raw)["status"] for raw in self._redis.hvals(self.states)))

    def save(self, state: DocumentState, previous: DocumentState | None = None) -> None:
        with self._redis.pipeline() as pipe:
            pipe.hset(self.states, state.key, STATE.encode(state))
            if previous is not None and previous.dataset_id != state.dataset_id:
                pipe.srem(self._keys.dataset(previous.tenant_id, previous.dataset_id), state.key)
            pipe.sadd(self._keys.dataset(state.tenant_id, state.dataset_id), state.key)
            pipe.execute()

    def replace_all(self, states: Iterable[DocumentState]) -> int:
        """Swap in a complete set of states at once (a rebuild), dropping everything else."""
        states = list(states)
        staging = f"{self.states}:rebuild"
        with self._redis.pipeline() as pipe:
            pipe.delete(staging)
            for state in states:
                pipe.hset(staging, state.key, STATE.encode(state))
            pipe.execute()
        old_sets = list(self._redis.scan_iter(match=self._keys.dataset_pattern))
        with self._redis.pipeline() as pipe:  # MULTI/EXEC: readers see the old or the new, never half
            if old_sets:
                pipe.delete(*old_sets)
            if states:
                pipe.rename(staging, self.states)
            else:
                pipe.delete(self.states, staging)
            for state in states:
                pipe.sadd(self._keys.dataset(state.tenant_id, state.dataset_id), state.key)
            pipe.execute()
        return len(states)
