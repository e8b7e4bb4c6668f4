"""Sources in the state Redis: their definitions, credentials (apart), the fingerprint and document
of every item the last sync saw, the run history with the running run's checkpoint at its head,
and the lease of the replica syncing a source."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal

import orjson
import redis
from pydantic import BaseModel, Field

from services.runtime.keys import RedisKeys
from services.sources.definitions import Source
from services.sources.kinds import Known

# A new run at the head of the history, unless one is running (then that one is answered): a
# manual request and the schedule never start two. Nothing for a source removed meanwhile.
_START = """
if redis.call('HEXISTS', KEYS[3], ARGV[3]) == 0 then return {-1, ''} end
local head = redis.call('LINDEX', KEYS[1], 0)
if head and cjson.decode(head)['status'] == 'running' then return {0, head} end
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
redis.call('DEL', KEYS[2])
return {1, ARGV[1]}
"""

# One step of a run, all or nothing: its counts, the items it has done, their new fingerprints and
# those forgotten (deleted). 0, with nothing written, once the source is removed or the run is no
# longer its newest (a replica that lost its lease).
_CHECKPOINT = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local head = redis.call('LINDEX', KEYS[2], 0)
if not head or cjson.decode(head)['id'] ~= ARGV[2] then return 0 end
redis.call('LSET', KEYS[2], 0, ARGV[3])
local i = 4
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('SADD', KEYS[3], ARGV[i]); i = i + 1 end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1]); i = i + 2 end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('HDEL', KEYS[4], ARGV[i]); i = i + 1 end
return 1
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RunError(BaseModel):
    item: str | None  # the item's URL; None for the listing
    reason: str


class Run(BaseModel):
    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    status: Literal["running", "completed", "error"] = "running"
    trigger: Literal["manual", "schedule"]
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    listed: int = 0  # items the listing found
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0  # items that could not be fetched or published (the first ``errors``)
    errors: list[RunError] = Field(default_factory=list)
    # Whether items gone at the source were deleted: not after a partial listing.
    pruned: bool = False

    @property
    def running(self) -> bool:
        return self.status == "running"


class SourceRemoved(Exception):
    """The source was removed, or its run taken over, while this replica synced it."""


def _known(raw: bytes) -> Known:
    value = orjson.loads(raw)
    return Known(fingerprint=value["f"], document_id=value["d"], memo=value.get("m") or {})


def _packed(known: Known) -> bytes:
    return orjson.dumps({"f": known.fingerprint, "d": known.document_id, "m": known.memo or None})


class SourceStore:
    def __init__(self, client: redis.Redis, keys: RedisKeys, runs_kept: int = 20):
        self._redis = client
        self._keys = keys
        self._runs_kept = runs_kept
        self._start = client.register_script(_START)
        self._checkpoint = client.register_script(_CHECKPOINT)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    # -- definitions ------------------------------------------------------------------------
    def save(self, source: Source, secrets: dict[str, str]) -> None:
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys.sources, source.key, source.model_dump_json())
            if secrets:
                pipe.hset(self._keys.source_secrets, source.key, orjson.dumps(secrets))
            else:
                pipe.hdel(self._keys.source_secrets, source.key)
            pipe.execute()

    def get(self, tenant_id: str, source_id: str) -> Source | None:
        raw = self._redis.hget(self._keys.sources, f"{tenant_id}/{source_id}")
        return Source.model_validate_json(raw) if raw is not None else None

    def all(self) -> list[Source]:
        return sorted((Source.model_validate_json(raw) for raw in self._redis.hvals(self._keys.sources)),
                      key=lambda s: (s.created_at, s.id))

    def of_dataset(self, tenant_id: str, dataset_id: str) -> list[Source]:
        return [s for s in self.all() if s.tenant_id == tenant_id and s.dataset_id == dataset_id]

    def exists(self, source: Source) -> bool:
        return bool(self._redis.hexists(self._keys.sources, source.key))

    def secrets(self, source: Source) -> dict[str, str]:
        raw = self._redis.hget(self._keys.source_secrets, source.key)
        return orjson.loads(raw) if raw is not None else {}

    def remove(self, source: Source) -> dict[str, Known]:
        """Forget the source, its history and its items; answers the items (their documents)."""
        items = self.items(source)
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self._keys.sources, source.key)
            pipe.hdel(self._keys.source_secrets, source.key)
            pipe.delete(self._keys.source_items(source.key), self._keys.source_runs(source.key),
                        self._keys.source_run_done(source.key))
            pipe.execute()
        return items

    # -- items and runs ---------------------------------------------------------------------
    def items(self, source: Source) -> dict[str, Known]:
        return {k.decode(): _known(v) for k, v in self._redis.hgetall(self._keys.source_items(source.key)).items()}

    def runs(self, source: Source, count: int | None = None) -> list[Run]:
        end = (count or self._runs_kept) - 1
        return [Run.model_validate_json(r) for r in self._redis.lrange(self._keys.source_runs(source.key), 0, end)]

    def last_runs(self, sources: Iterable[Source]) -> dict[str, Run | None]:
        """Source id -> its newest run, one round trip for all."""
        sources = list(sources)
        with self._redis.pipeline(transaction=False) as pipe:
            for source in sources:
                pipe.lindex(self._keys.source_runs(source.key), 0)
            heads = pipe.execute()
        return {s.id: Run.model_validate_json(h) if h is not None else None for s, h in zip(sources, heads)}

    def start_run(self, source: Source, trigger: str) -> tuple[Run, bool]:
        """A new run, or the one running (and False); SourceRemoved if the source is gone."""
        run = Run(trigger=trigger)
        outcome, head = self._start(
            keys=[self._keys.source_runs(source.key), self._keys.source_run_done(source.key), self._keys.sources],
            args=[run.model_dump_json(), self._runs_kept, source.key])
        if int(outcome) < 0:
            raise SourceRemoved(f"source {source.id} was removed")
        return Run.model_validate_json(head), bool(int(outcome))

    def done(self, source: Source) -> set[str]:
        """The items the running sync has done (its checkpoint)."""
        return {m.decode() for m in self._redis.smembers(self._keys.source_run_done(source.key))}

    def checkpoint(self, source: Source, run: Run, done: Iterable[str], seen: dict[str, Known],
                   forgotten: Iterable[str]) -> None:
        done, forgotten = list(done), list(forgotten)
        args: list = [source.key, run.id, run.model_dump_json(), len(done), *done, len(seen)]
        for item_id, known in seen.items():
            args += [item_id, _packed(known)]
        args += [len(forgotten), *forgotten]
        keys = [self._keys.sources, self._keys.source_runs(source.key), self._keys.source_run_done(source.key),
                self._keys.source_items(source.key)]
        if not int(self._checkpoint(keys=keys, args=args)):
            raise SourceRemoved(f"source {source.id} was removed, or its run {run.id} taken over")

    def fail_run(self, source: Source, run: Run, reason: str) -> None:
        """End the run in error with ``reason``, keeping the counts of its last checkpoint."""
        checkpointed = next((r for r in self.runs(source, 1) if r.id == run.id), run)
        failed = checkpointed.model_copy(update={
            "status": "error", "finished_at": datetime.now(UTC),
            "errors": [*checkpointed.errors, RunError(item=None, reason=reason)]})
        self.checkpoint(source, failed, [], {}, [])

    # -- leases -----------------------------------------------------------------------------
    def lease(self, source: Source, owner: str, seconds: float) -> bool:
        return bool(self._redis.set(self._keys.source_lease(source.key), owner, nx=True, px=int(seconds * 1000)))

    def renew(self, source: Source, owner: str, seconds: float) -> bool:
        return bool(int(self._renew(keys=[self._keys.source_lease(source.key)], args=[owner, int(seconds * 1000)])))

    def release(self, source: Source, owner: str) -> None:
        self._release(keys=[self._keys.source_lease(source.key)], args=[owner])
