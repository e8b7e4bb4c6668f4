"""A server the gateway needs that does not answer is a 503 with Retry-After and the dependency
named, in the API's error shape; not a 500 with a stack trace (a client retries a 503, it reports
a 500)."""

from __future__ import annotations

import httpx

from services.runtime.settings import Settings
from tests.conftest import free_port
from tests.support.gateway import Gateway, extra_gateway


def test_an_unreachable_state_redis_is_a_503_to_retry(pipeline: Settings):
    with extra_gateway(INDEXFLOW_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0") as url:
        response = httpx.get(f"{url}/v1/datasets", headers={"X-Tenant-Id": "outage"}, timeout=30)
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    body = response.json()
    assert body["code"] == "service_unavailable" and "ConnectionError" in body["message"], body


def test_an_unreachable_elasticsearch_is_a_503_to_retry(pipeline: Settings):
    gateway = Gateway(pipeline, tenant="outage", dataset="searched")
    accepted = gateway.create_text("here.txt", "Something to search for while the index is away.")
    gateway.wait(accepted["document_id"], accepted["revision"])
    with extra_gateway(INDEXFLOW_ELASTICSEARCH_URL=f"http://127.0.0.1:{free_port()}") as url:
        response = httpx.post(f"{url}/v1/datasets/searched/retrieve", json={"query": "search", "mode": "full_text"},
                              headers={"X-Tenant-Id": "outage"}, timeout=60)
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "service_unavailable" and response.headers["Retry-After"] == "1"
