"""A barrier that makes the state Redis's acknowledged writes durable before anything relies on
them: before a stage commits the offsets of records whose effects it wrote there, and before the
gateway answers a write. Redis acknowledges a write once it is in memory and handed to the append-
only file; with ``appendfsync everysec`` a host failure still loses up to a second of them.

What the server offers is asked once per client, best first:

- ``WAITAOF 1 0`` (Redis 7.2 and later, AOF on): the local AOF is fsynced up to here.
- ``WAIT 1`` (a replica connected): a replica holds every write up to here.
- ``appendfsync always``: every write was fsynced before it was acknowledged; nothing to wait for.
- none of these: nothing can make the writes durable; said once, loudly.

WAIT and WAITAOF wait for the writes made on the connection they are sent on, and a pool hands
out any connection. So the barrier first writes a marker on its own connection: the replication
stream and the AOF are each one ordered log, and once the marker is durable so is every write
acknowledged before it, on any connection. A cluster has a log per master: the barrier writes a
marker on each master and waits there."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from enum import Enum
from functools import cache

import redis

from services.runtime.errors import DependencyUnavailable
from services.runtime.redis_client import redis_client
from services.runtime.settings import Settings

log = logging.getLogger(__name__)

# How long a barrier waits for the fsync or the replica before the write counts as not durable
# (an outage: the stage retries its batch, the gateway answers 503).
WAIT_TIMEOUT_MS = 5000


class Durability(Enum):
    WAITAOF = "waitaof"
    REPLICA = "replica"
    FSYNC_ALWAYS = "fsync-always"
    NONE = "none"


class NotDurable(DependencyUnavailable):
    """The state Redis did not confirm the writes durable in time."""


class DurabilityBarrier:
    def __init__(self, client: redis.Redis, marker: Callable[[int], str], timeout_ms: int = WAIT_TIMEOUT_MS):
        """``marker(n)``: the marker key the barrier writes; on a cluster, n = 0, 1, ... until some
        marker lands on every master."""
        self._redis = client
        self._marker = marker
        self._timeout_ms = timeout_ms
        self._mode: Durability | None = None
        self._targets: list[tuple[redis.Redis, str]] | None = None  # (a master, a marker it holds)
        self._lock = threading.Lock()

    def mode(self) -> Durability:
        """How this server makes writes durable; asked once (again after a failed ask)."""
        with self._lock:
            if self._mode is None:
                self._mode = _durability_of(self._masters()[0][0])
                if self._mode is Durability.NONE:
                    log.error("the state Redis has no WAITAOF, no replica and no `appendfsync always`: a host "
                              "failure can lose writes already acknowledged (and offsets committed over them)")
                else:
                    log.info("state Redis writes made durable by %s", self._mode.value)
            return self._mode

    def wait(self) -> None:
        """Return once every write acknowledged so far is durable; NotDurable if that was not
        confirmed within the timeout."""
        mode = self.mode()
        if mode in (Durability.FSYNC_ALWAYS, Durability.NONE):
            return
        command = ("WAITAOF", 1, 0) if mode is Durability.WAITAOF else ("WAIT", 1)
        for master, marker in self._masters():
            try:
                with master.pipeline(transaction=False) as pipe:  # one connection: the marker's
                    pipe.incr(marker)
                    pipe.execute_command(*command, self._timeout_ms)
                    _, answer = pipe.execute()
            except redis.RedisError:  # a master gone or its slots moved: the masters are asked again next time
                self._targets = None
                raise
            confirmed = answer[0] if mode is Durability.WAITAOF else answer
            if int(confirmed) < 1:
                raise NotDurable(f"the state Redis did not confirm its writes durable ({mode.value}) "
                                 f"within {self._timeout_ms} ms")

    def _masters(self) -> list[tuple[redis.Redis, str]]:
        """Each master with a marker key it holds: the server itself, or each of a cluster's."""
        if self._targets is None:
            if not isinstance(self._redis, redis.RedisCluster):
                self._targets = [(self._redis, self._marker(0))]
            else:
                markers: dict[str, str] = {}
                primaries = {node.name for node in self._redis.get_primaries()}
                hint = 0
                while not primaries <= set(markers):
                    markers.setdefault(self._redis.get_node_from_key(self._marker(hint)).name, self._marker(hint))
                    hint += 1
                self._targets = [(self._redis.get_redis_connection(self._redis.get_node(node_name=name)), marker)
                                 for name, marker in sorted(markers.items())]
        return self._targets


def _durability_of(client: redis.Redis) -> Durability:
    aof = bool(client.info("persistence").get("aof_enabled"))
    # Valkey, which has WAITAOF too, reports the Redis version it is compatible with (7.2.4).
    version = tuple(int(part) for part in str(client.info("server")["redis_version"]).split(".")[:2])
    if aof and version >= (7, 2):
        return Durability.WAITAOF
    if int(client.info("replication").get("connected_slaves", 0)) > 0:
        return Durability.REPLICA
    try:
        fsync = client.config_get("appendfsync").get("appendfsync")
    except redis.ResponseError:  # CONFIG refused (a managed server): assume the default, everysec
        fsync = None
    return Durability.FSYNC_ALWAYS if aof and fsync == "always" else Durability.NONE


@cache
def _barrier(client: redis.Redis, marker_key: str) -> DurabilityBarrier:
    return DurabilityBarrier(client, marker_key)


def state_durability(settings: Settings) -> DurabilityBarrier:
    """The state Redis's barrier, one per process and server (its way asked once)."""
    return _barrier(redis_client(settings), settings.keys.durability_mark)
