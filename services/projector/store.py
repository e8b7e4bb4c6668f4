"""Document states in Redis: one hash of states, and one set of document keys per dataset."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import orjson
import redis

from schemas import STATE, DocumentState


class StateStore:
    def __init__(self, client: redis.Redis, namespace: str):
        self._redis = client
        self.states = f"{namespace}state"
        self._datasets = f"{namespace}dataset:"

    def _dataset_key(self, tenant_id: str, dataset_id: str) -> str:
        return f"{self._datasets}{tenant_id}/{dataset_id}"

    def get(self, key: str) -> DocumentState | None:
        raw = self._redis.hget(self.states, key)
        return STATE.decode(raw) if raw is not None else None

    def get_many(self, keys: Iterable[str]) -> list[DocumentState]:
        keys = list(keys)
        raws = self._redis.hmget(self.states, keys) if keys else []
        return [STATE.decode(raw) for raw in raws if raw is not None]

    def dataset(self, tenant_id: str, dataset_id: str) -> list[DocumentState]:
        keys = sorted(k.decode() for k in self._redis.smembers(self._dataset_key(tenant_id, dataset_id)))
        return self.get_many(keys)

    def count_by_status(self) -> dict[str, int]:
        return dict(Counter(orjson.loads(raw)["status"] for raw in self._redis.hvals(self.states)))

    def save(self, state: DocumentState) -> None:
        with self._redis.pipeline() as pipe:
            pipe.hset(self.states, state.key, STATE.encode(state))
            pipe.sadd(self._dataset_key(state.tenant_id, state.dataset_id), state.key)
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
        old_sets = list(self._redis.scan_iter(match=f"{self._datasets}*"))
        with self._redis.pipeline() as pipe:  # MULTI/EXEC: readers see the old or the new, never half
            if old_sets:
                pipe.delete(*old_sets)
            if states:
                pipe.rename(staging, self.states)
            else:
                pipe.delete(self.states, staging)
            for state in states:
                pipe.sadd(self._dataset_key(state.tenant_id, state.dataset_id), state.key)
            pipe.execute()
        return len(states)
