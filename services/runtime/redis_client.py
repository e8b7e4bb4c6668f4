"""One Redis connection pool per process and per home (state, cache)."""

from __future__ import annotations

from functools import cache
from typing import Any

import redis
import redis.asyncio

from services.runtime.metrics import SERVER_WAIT
from services.runtime.settings import Settings

_WAITED = SERVER_WAIT.labels("redis")


@cache
def _client(url: str, ca_certs: str | None, cluster: bool = False) -> redis.Redis:
    if cluster:
        # A node's connections are made by the cluster client itself, of the URL's kind, timed all the same.
        kind = redis.SSLConnection if url.startswith("rediss://") else redis.Connection
        return redis.RedisCluster.from_url(url, connection_class=_timed(kind), **_options(url, ca_certs))
    client = redis.Redis.from_url(url, **_options(url, ca_certs))
    pool = client.connection_pool
    pool.connection_class = _timed(pool.connection_class)  # the URL's kind (TCP, TLS, socket), timed
    return client


@cache
def _timed(connection_class: type) -> type:
    """``connection_class`` whose every answer read (pipelines' too) counts as time waiting on Redis."""
    def read_response(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _WAITED.time():
            return connection_class.read_response(self, *args, **kwargs)
    return type(f"Timed{connection_class.__name__}", (connection_class,), {"read_response": read_response})


def _options(url: str, ca_certs: str | None) -> dict:
    # Password and TLS come from the URL (rediss://); a private CA from the settings.
    tls = {"ssl_ca_certs": ca_certs} if ca_certs and url.startswith("rediss://") else {}
    return {"socket_timeout": 10, "socket_connect_timeout": 5, "health_check_interval": 30, **tls}


def redis_client(settings: Settings) -> redis.Redis:
    """The state Redis: revisions, registry, progress, projected states."""
    return _client(settings.redis_url, _ca(settings), settings.redis_cluster)


def async_redis_client(settings: Settings) -> redis.asyncio.Redis:
    """The state Redis for an event loop (the gateway's live feeds), with no read timeout: a
    subscriber waits as long as nothing is published. One per event loop: the caller keeps it."""
    options = _options(settings.redis_url, _ca(settings)) | {"socket_timeout": None}
    if settings.redis_cluster:
        return redis.asyncio.RedisCluster.from_url(settings.redis_url, **options)
    return redis.asyncio.Redis.from_url(settings.redis_url, **options)


async def initialized(client: redis.asyncio.Redis) -> redis.asyncio.Redis:
    """``client``, knowing its nodes if it is a cluster's: its pubsub picks a node by the channel's
    slot, and fails before the client has learnt the slots (a command does that, a subscribe not)."""
    if isinstance(client, redis.asyncio.RedisCluster):
        await client.initialize()
    return client


def cache_redis_client(settings: Settings) -> redis.Redis:
    """The cache Redis: embedding vectors, safe to evict."""
    return _client(settings.cache_redis_url, _ca(settings))


def _ca(settings: Settings) -> str | None:
    return str(settings.redis_ca_certs) if settings.redis_ca_certs else None
