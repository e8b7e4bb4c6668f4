"""Where a server's loss of acknowledged data is reported, for the watchdog to recover from at once
(services/watchdog/restarts.py): ``indexflow up`` reports the restart of an embedded server, and a
consumer reports a partition whose log went back below what it had read (a broker that came back
without its records)."""

from __future__ import annotations

import time

import redis

from services.runtime.keys import RedisKeys


def record_loss(client: redis.Redis, keys: RedisKeys, server: str, at: float | None = None) -> None:
    client.hset(keys.server_losses, server, repr(at if at is not None else time.time()))
