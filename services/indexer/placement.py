"""Which index a dataset's chunks live in: the index budget.

Up to ``INDEXFLOW_MAX_DATASET_INDICES`` datasets of the deployment have indices of their own (one
per model): BM25 scores each with its own term statistics, and its search or refresh touches its
chunks only. Past the budget a dataset shares its tenant's index (per model), scored with the
statistics of that tenant's shared datasets, never another tenant's. Real Elasticsearch holds
1,000 shards per node; indices per dataset without bound would end with every tenant's new
dataset failing.

The indexer places a dataset at its first write and records the placement (state Redis); search
reads it, so both name the same index. The budget's use is a counter beside the placements (two
keys, no script: Redis Cluster would refuse one across hash slots); a race can overshoot it by
the indexers placing at that moment, never for good. A dataset nobody placed was indexed before
placements were recorded, in an index of its own (or a per-model index of before, which search
names anyway)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import redis

from services.indexer.mapping import index_name, tenant_index
from services.runtime.keys import RedisKeys


@dataclass(frozen=True)
class Placement:
    own: bool  # indices of its own; else its tenant's shared ones
    # New at every placement: a dataset deleted (its index with it) and written again is placed anew,
    # and an indexer that knew the old index makes it again rather than take it for existing.
    token: str = ""

    @classmethod
    def parse(cls, raw: bytes) -> Placement:
        kind, _, token = raw.decode().partition("/")
        return cls(kind == "own", token)

    @property
    def value(self) -> str:
        return f"{'own' if self.own else 'tenant'}/{self.token}"

    def index(self, prefix: str, model: str | None, tenant_id: str, dataset_id: str) -> str:
        """The index of the dataset's chunks of ``model``."""
        if self.own:
            return index_name(prefix, model, (tenant_id, dataset_id))
        return tenant_index(prefix, model, tenant_id)


UNPLACED = Placement(own=True)


class IndexPlacements:
    def __init__(self, client: redis.Redis, keys: RedisKeys, budget: int):
        self._redis = client
        self._keys = keys
        self.budget = budget

    def place(self, tenant_id: str, dataset_id: str, has_own_index: Callable[[], bool]) -> Placement:
        """The dataset's placement: the recorded one, else an index of its own while the budget
        lasts (or when it has one already, made before placements), else its tenant's."""
        key = self._keys.index_placements(tenant_id)
        recorded = self._redis.hget(key, dataset_id)
        if recorded is not None:
            return Placement.parse(recorded)
        held = self._redis.incr(self._keys.dataset_indices_held)
        placement = Placement(held <= self.budget or has_own_index(), uuid.uuid4().hex[:12])
        if not placement.own:
            self._redis.decr(self._keys.dataset_indices_held)
        if not self._redis.hsetnx(key, dataset_id, placement.value):  # another indexer placed it meanwhile
            if placement.own:
                self._redis.decr(self._keys.dataset_indices_held)
            return Placement.parse(self._redis.hget(key, dataset_id))
        return placement

    def of(self, tenant_id: str, dataset_id: str) -> Placement:
        recorded = self._redis.hget(self._keys.index_placements(tenant_id), dataset_id)
        return Placement.parse(recorded) if recorded is not None else UNPLACED

    def release(self, tenant_id: str, dataset_id: str) -> None:
        """The dataset's indices are gone: its share of the budget is free, and a next write places it anew."""
        # MULTI: only the one who removes the record gives back its share
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hget(self._keys.index_placements(tenant_id), dataset_id)
            pipe.hdel(self._keys.index_placements(tenant_id), dataset_id)
            recorded, removed = pipe.execute()
        if removed and Placement.parse(recorded).own:
            self._redis.decr(self._keys.dataset_indices_held)
