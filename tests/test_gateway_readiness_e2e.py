"""The gateway is ready when what reads need answers (the state Redis, Elasticsearch), not Kafka: a
broker outage stops writes (503 on their own), never search. Readiness is answered from checks
made in the background, well within a probe's one-second timeout."""

from __future__ import annotations

import time

import httpx

from services.runtime.settings import Settings
from tests.conftest import free_port
from tests.support.gateway import extra_gateway


def probe(url: str) -> tuple[int, dict, float]:
    started = time.monotonic()
    response = httpx.get(url, timeout=10)
    return response.status_code, response.json(), time.monotonic() - started


def settled(url: str, status: int, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        code, body, _ = probe(url)
        if code == status:
            return body
        assert time.monotonic() < deadline, (code, body)
        time.sleep(0.2)


def test_a_kafka_outage_leaves_the_gateway_ready_for_reads(stack_settings: Settings):
    with extra_gateway(INDEXFLOW_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}", INDEXFLOW_AUTH="open") as url:
        ready = settled(f"{url}/readyz", 200)
        assert ready["dependencies"] == {"redis": True, "elasticsearch": True} and ready["kafka"] is False
        for _ in range(5):
            code, _, seconds = probe(f"{url}/readyz")
            assert code == 200 and seconds < 0.5, seconds
        health = settled(f"{url}/healthz", 503)
        assert health["dependencies"]["kafka"] is False
        _, _, seconds = probe(f"{url}/healthz")
        assert seconds < 0.5, seconds


def test_an_elasticsearch_outage_makes_the_gateway_unready(stack_settings: Settings):
    with extra_gateway(INDEXFLOW_ELASTICSEARCH_URL=f"http://127.0.0.1:{free_port()}", INDEXFLOW_AUTH="open") as url:
        unready = settled(f"{url}/readyz", 503)
        assert unready["dependencies"]["elasticsearch"] is False
