"""Every API request is admitted for its tenant before any of its work starts, so one tenant's many
or slow requests never take the gateway's workers from the others: within the tenant's request
rate (a token bucket), its requests in flight, its searches among them (CPU-bound: a few of one
tenant's would take the GIL every tenant's requests share) and its live event streams. Beyond them,
429 with Retry-After, answered on the event loop without a worker thread or reading the body (an
estimate's upload or a filtered search's values are megabytes to read and parse).

The tenant is the one its API key names (looked up once every few seconds per key); a caller
without a known key is its X-Tenant-Id in open mode, and one shared anonymous tenant with keys
required (its requests end in 401, but cannot crowd out anyone's meanwhile)."""

from __future__ import annotations

import hashlib
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from services.estimate.queue import QueueFull, TenantBusy
from services.gateway.errors import ApiError, error_response
from services.gateway.services import Services, bearer_key
from services.gateway.tenant_limits import LimitReached
from services.runtime.errors import OUTAGE_ERRORS
from services.runtime.metrics import ESTIMATES

EVENTS_PATH = "/v1/ops/events"
ANONYMOUS = ""  # the tenant of callers without a known key, with keys required
_KEY_SECONDS = 5.0  # how long a key's tenant is taken as known (revocation is checked by each route)


def admitted_path(path: str) -> bool:
    """The API: health, metrics and the dashboard's files stay outside (a probe is never refused)."""
    return path.startswith("/v1/") or path == "/retrieval"


def estimate_path(path: str) -> bool:
    return path.startswith("/v1/datasets/") and path.endswith("/document/estimate")


def estimate_refused(reason: TenantBusy | QueueFull, tenant_limit: int, queue: int) -> ApiError:
    ESTIMATES.labels("refused").inc()
    if isinstance(reason, TenantBusy):
        return LimitReached(429, "estimates", tenant_limit, " (queued or running at once)", retry_after=1)
    return ApiError(429, f"{queue} estimates wait already, the most the gateway queues "
                         "(INDEXFLOW_GATEWAY_ESTIMATE_QUEUE); retry shortly", headers={"Retry-After": "1"})


def search_path(path: str) -> bool:
    """A dataset's retrieve or hit-testing, a search across datasets, or Dify's external retrieval."""
    return path in ("/v1/retrieve", "/retrieval") or (
        path.startswith("/v1/datasets/") and path.endswith(("/retrieve", "/hit-testing")))


class Admission:
    def __init__(self, app: ASGIApp, services: Services):
        self.app = app
        self.services = services
        self._tenants: dict[str, tuple[float, str | None]] = {}  # key digest -> (when looked up, tenant)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not admitted_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        s = self.services
        try:
            tenant = await self._tenant(scope)
            limits = await s.limits.of_async(tenant)
        except OUTAGE_ERRORS:  # the route answers the outage as every route does
            await self.app(scope, receive, send)
            return
        stream = scope["path"] == EVENTS_PATH
        search = search_path(scope["path"])
        held = s.slots.streams if stream else s.slots.in_flight
        in_flight = s.gateway.max_requests_in_flight_per_tenant
        refusal = None
        if wait := s.slots.wait_for_token(tenant, limits.rps):
            refusal = LimitReached(429, "rps", limits.rps, retry_after=wait)
        elif stream and not s.slots.take(held, tenant, limits.streams):
            refusal = LimitReached(429, "streams", limits.streams, " (open at once)", retry_after=1)
        elif not stream and not s.slots.take(held, tenant, in_flight):
            refusal = ApiError(429, f"the tenant has {in_flight} requests in flight, the most one tenant may have on "
                                    "a gateway (INDEXFLOW_GATEWAY_MAX_REQUESTS_IN_FLIGHT_PER_TENANT); retry once one "
                                    "is answered", headers={"Retry-After": "1"})
        elif search and not s.slots.take(s.slots.searches, tenant, limits.searches):
            s.slots.release(held, tenant)
            refusal = LimitReached(429, "searches", limits.searches, " (being answered at once)", retry_after=1)
        elif estimate_path(scope["path"]) and (full := s.estimates.no_room(tenant, limits.estimates)) is not None:
            # Refused before its upload is read and parsed (a scanned page's is megabytes); the
            # queue checks again when the estimate is submitted.
            s.slots.release(held, tenant)
            refusal = estimate_refused(full, limits.estimates, s.gateway.estimate_queue)
        if refusal is not None:
            await error_response(429, refusal.detail, refusal.headers)(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            s.slots.release(held, tenant)
            if search:
                s.slots.release(s.slots.searches, tenant)

    async def _tenant(self, scope: Scope) -> str:
        headers = {name: value.decode("latin-1") for name, value in scope["headers"]
                   if name in (b"authorization", b"x-tenant-id")}
        key = bearer_key(headers.get(b"authorization"))
        tenant = await self._tenant_of(key) if key else None
        if tenant is None and self.services.settings.auth == "open":
            return headers.get(b"x-tenant-id") or "default"
        return tenant or ANONYMOUS

    async def _tenant_of(self, key: str) -> str | None:
        digest = hashlib.sha256(key.encode()).hexdigest()
        known = self._tenants.get(digest)
        if known is not None and time.monotonic() - known[0] < _KEY_SECONDS:
            return known[1]
        tenant = await self.services.api_keys.tenant_of_async(self.services.async_redis, key)
        if len(self._tenants) > 100_000:  # many keys (or forged ones): forget them all, not grow for ever
            self._tenants.clear()
        self._tenants[digest] = (time.monotonic(), tenant)
        return tenant
