"""What one tenant may hold and do at once: the deployment's defaults (``INDEXFLOW_GATEWAY_MAX_*``)
and what the operator set for the tenant (`indexflow tenants set-limits`, state Redis hash
``tenant-limits``). A gateway reads a tenant's own limits again every few seconds, so a changed
limit applies without a restart and costs no Redis round trip on every request."""

from __future__ import annotations

import time

import orjson
import redis
import redis.asyncio
from pydantic import BaseModel, Field

from services.gateway.errors import ApiError
from services.gateway.settings import GatewaySettings
from services.runtime.keys import RedisKeys


class Limits(BaseModel):
    datasets: int = Field(ge=1)
    documents: int = Field(ge=1)
    bytes: int = Field(ge=1)  # stored: texts and uploads as written
    rps: float = Field(gt=0)  # requests per second, per gateway replica
    streams: int = Field(ge=1)  # live event streams open at once, per replica
    estimates: int = Field(ge=1)  # estimates queued or running at once, per replica
    searches: int = Field(ge=1)  # searches being answered at once, per replica
    tags: int = Field(ge=1)  # knowledge tags


# How each limit is named in refusals and in the CLI.
DESCRIPTIONS = {
    "datasets": "datasets", "documents": "documents", "bytes": "stored bytes", "rps": "requests per second",
    "streams": "live event streams", "estimates": "concurrent estimates",
    "searches": "concurrent searches", "tags": "knowledge tags",
}


def shown(value: float) -> str:
    """A limit as people read it: 53,687,091,200 and 2.5, never 5.36871e+10."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,}"


def default_limits(gateway: GatewaySettings) -> Limits:
    return Limits(
        datasets=gateway.max_datasets_per_tenant, documents=gateway.max_documents_per_tenant,
        bytes=gateway.max_bytes_per_tenant, rps=gateway.max_requests_per_second_per_tenant,
        streams=gateway.max_streams_per_tenant, estimates=gateway.max_estimates_per_tenant,
        searches=gateway.max_searches_per_tenant, tags=gateway.max_tags_per_tenant,
    )


class LimitReached(ApiError):
    """A request past one of the tenant's limits, in Dify's error shape with the limit named: 429
    with Retry-After for a rate or a concurrency (try again later), else 403 or 413 (a count or a
    size: something must go first)."""

    def __init__(self, status: int, limit: str, value: float, detail: str = "", retry_after: float | None = None):
        message = (f"the tenant's limit of {shown(value)} {DESCRIPTIONS.get(limit, limit)} is reached{detail}; "
                   f"the operator sets it with `indexflow tenants set-limits --{limit}`")
        headers = {"Retry-After": str(max(1, int(retry_after + 0.999)))} if retry_after is not None else None
        super().__init__(status, message, headers=headers, limit=limit)


class TenantLimits:
    def __init__(self, client: redis.Redis, async_client: redis.asyncio.Redis | None, keys: RedisKeys,
                 gateway: GatewaySettings):
        self._redis = client
        self._async = async_client
        self._hash = keys.tenant_limits
        self.defaults = default_limits(gateway)
        self._ttl = gateway.limits_cache_seconds
        self._read: dict[str, tuple[float, Limits]] = {}  # tenant -> (when read, its limits)

    def of(self, tenant_id: str) -> Limits:
        cached = self._cached(tenant_id)
        return cached if cached is not None else self._remember(tenant_id, self._redis.hget(self._hash, tenant_id))

    async def of_async(self, tenant_id: str) -> Limits:
        """As ``of``, on the event loop (the admission of every request)."""
        cached = self._cached(tenant_id)
        if cached is not None:
            return cached
        assert self._async is not None
        return self._remember(tenant_id, await self._async.hget(self._hash, tenant_id))

    def own(self, tenant_id: str) -> dict:
        """What the operator set for the tenant (nothing: the defaults apply)."""
        raw = self._redis.hget(self._hash, tenant_id)
        return orjson.loads(raw) if raw is not None else {}

    def set(self, tenant_id: str, **changes: float) -> Limits:
        """Keep ``changes`` (limit -> value) for the tenant beside what was set before."""
        own = {**self.own(tenant_id), **changes}
        limits = Limits.model_validate({**self.defaults.model_dump(), **own})  # checked before stored
        self._redis.hset(self._hash, tenant_id, orjson.dumps(own))
        self._read.pop(tenant_id, None)
        return limits

    def _cached(self, tenant_id: str) -> Limits | None:
        read = self._read.get(tenant_id)
        return read[1] if read is not None and time.monotonic() - read[0] < self._ttl else None

    def _remember(self, tenant_id: str, raw: bytes | None) -> Limits:
        own = orjson.loads(raw) if raw is not None else {}
        limits = Limits.model_validate({**self.defaults.model_dump(), **own})
        if len(self._read) > 100_000:  # callers of many tenants: forget them all, not grow for ever
            self._read.clear()
        self._read[tenant_id] = (time.monotonic(), limits)
        return limits
