"""``/metrics`` stays open to scrapers (INDEXFLOW_AUTH=api_keys included), so nothing a caller
sends may become a label there: its series name routes, methods and statuses of the API only,
never a tenant or anything a request made up."""

from __future__ import annotations

import httpx

from services.gateway.api_keys import ApiKeys
from services.runtime.redis_client import redis_client
from services.runtime.settings import Settings
from tests.support.gateway import extra_gateway


def test_metrics_carry_no_tenant_and_nothing_a_caller_made_up(pipeline: Settings):
    key, _ = ApiKeys(redis_client(pipeline), pipeline.keys).create("metered-tenant")
    with extra_gateway(INDEXFLOW_AUTH="api_keys") as url:
        bearer = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{url}/v1/datasets/metered-dataset/documents", headers=bearer).status_code == 404
        for made_up in ("METEREDTENANT", "PROBE1", "PROBE2"):
            httpx.request(made_up, f"{url}/v1/datasets", headers=bearer, timeout=10)
        metrics = httpx.get(f"{url}/metrics", timeout=10)
    assert metrics.status_code == 200
    for secret in ("metered", "METERED", "PROBE"):
        assert secret not in metrics.text, [line for line in metrics.text.splitlines() if secret in line]
    assert 'method="OTHER"' in metrics.text
