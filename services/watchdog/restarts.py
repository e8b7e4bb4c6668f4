"""Server losses reported (services/runtime/server_losses.py: restarts of embedded servers, logs
found rewound by consumers), and which of them the watchdog has recovered from.

A restart is when loss happens, so it is when to look for it: the in-memory broker comes back
empty (every record in flight is gone, so the documents they carried would wait for the stall
rule), and the Elasticsearch stand-in comes back from a snapshot a few seconds old (acknowledged
chunks gone, which the hourly reconciler would find only later). Production servers lose nothing
they acknowledged; what they may still lose (records past retention, a log truncated by an unclean
leader election) the consumers see and report."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from services.runtime.keys import RedisKeys

# What each server's loss may have taken, and so what the watchdog runs.
RECORDS_LOST = "kafka"
WRITES_LOST = ("elasticsearch", "redis")


@dataclass(frozen=True)
class Restart:
    server: str
    at: float  # unix time


class Restarts:
    def __init__(self, client: redis.Redis, keys: RedisKeys):
        self._redis = client
        self._keys = keys

    def pending(self) -> list[Restart]:
        """Losses not yet recovered from, oldest first."""
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._keys.server_losses)
            pipe.hgetall(self._keys.server_losses_handled)
            starts, handled = pipe.execute()
        return sorted(
            (Restart(name.decode(), float(at)) for name, at in starts.items() if handled.get(name) != at),
            key=lambda restart: restart.at,
        )

    def handled(self, restart: Restart) -> None:
        self._redis.hset(self._keys.server_losses_handled, restart.server, repr(restart.at))
