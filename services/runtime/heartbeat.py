"""Liveness of every service process: each one stamps the time into the state Redis while its
loop turns (consumer poll loop, projector timer). The watchdog holds off while the projector is
silent, and the gateway's health check reports every service's newest stamp."""

from __future__ import annotations

import logging
import os
import socket
import time

import redis

from services.runtime.errors import as_outage
from services.runtime.keys import RedisKeys

log = logging.getLogger(__name__)
BEAT_EVERY_SECONDS = 5.0


class Heartbeat:
    def __init__(self, client: redis.Redis, keys: RedisKeys, service: str):
        self._redis = client
        self._key = keys.heartbeats
        self._field = f"{service}/{socket.gethostname()}:{os.getpid()}"
        self._last = 0.0

    def beat(self) -> bool:
        """Stamp now, at most every few seconds (True when it was time). A Redis outage only makes
        the stamp late."""
        now = time.time()
        if now - self._last < BEAT_EVERY_SECONDS:
            return False
        self._last = now  # also after a failure: a Redis outage must not slow every poll
        try:
            self._redis.hset(self._key, self._field, f"{now:.3f}")
        except Exception as exc:  # noqa: BLE001 - liveness must never take the service down
            if as_outage(exc) is None:
                raise
            log.warning("heartbeat not recorded: %s", exc)
        return True

    def stop(self) -> None:
        try:
            self._redis.hdel(self._key, self._field)
        except Exception as exc:  # noqa: BLE001
            if as_outage(exc) is None:
                raise


def alive_here(client: redis.Redis, keys: RedisKeys, service: str, within: float) -> bool:
    """A process of ``service`` on this host stamped within the last ``within`` seconds (the
    liveness probe of a container, whose host name is its own)."""
    prefix = f"{service}/{socket.gethostname()}:"
    now = time.time()
    return any(
        field.decode().startswith(prefix) and now - float(stamp) <= within
        for field, stamp in client.hgetall(keys.heartbeats).items()
    )


def last_beats(client: redis.Redis, keys: RedisKeys) -> dict[str, float]:
    """Service -> seconds since its most recent stamp (any of its processes)."""
    now = time.time()
    newest: dict[str, float] = {}
    for field, stamp in client.hgetall(keys.heartbeats).items():
        service = field.decode().split("/", 1)[0]
        newest[service] = max(newest.get(service, 0.0), float(stamp))
    return {service: round(now - stamp, 1) for service, stamp in newest.items()}


def processes_alive(client: redis.Redis, keys: RedisKeys, within: float) -> dict[str, int]:
    """Service -> how many of its processes (replicas) stamped within the last ``within`` seconds."""
    now = time.time()
    alive: dict[str, int] = {}
    for field, stamp in client.hgetall(keys.heartbeats).items():
        if now - float(stamp) <= within:
            service = field.decode().split("/", 1)[0]
            alive[service] = alive.get(service, 0) + 1
    return alive
