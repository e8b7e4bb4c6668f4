"""What each tenant has going on in this gateway replica: requests in flight, live event streams
(counted apart: they last as long as a dashboard stays open), searches among its requests in
flight (CPU-bound: counted again, against a smaller limit) and a token bucket of its request rate.
In memory, on the event loop: exact, and gone with the replica."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    tokens: float
    at: float = field(default_factory=time.monotonic)


class TenantSlots:
    def __init__(self) -> None:
        self.in_flight: Counter[str] = Counter()
        self.streams: Counter[str] = Counter()
        self.searches: Counter[str] = Counter()
        self._buckets: dict[str, _Bucket] = {}

    def wait_for_token(self, tenant_id: str, rate: float) -> float:
        """Take one request's token from the tenant's bucket (``rate`` a second, bursts of two
        seconds' worth): 0 if taken, else the seconds until one is there."""
        now = time.monotonic()
        burst = max(2 * rate, 1.0)
        bucket = self._buckets.setdefault(tenant_id, _Bucket(burst, now))
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        if len(self._buckets) > 100_000:  # callers of many tenants: full buckets are forgotten
            self._buckets = {t: b for t, b in self._buckets.items() if b.tokens < burst}
        return (1 - bucket.tokens) / rate

    def take(self, held: Counter[str], tenant_id: str, limit: int) -> bool:
        if held[tenant_id] >= limit:
            return False
        held[tenant_id] += 1
        return True

    def release(self, held: Counter[str], tenant_id: str) -> None:
        held[tenant_id] -= 1
        if held[tenant_id] <= 0:
            del held[tenant_id]
