"""What a gateway requiring API keys shows without one, the headers its pages carry, and a live
event stream outliving its key: none of it for a caller without a valid key."""

from __future__ import annotations

import time

import httpx
import pytest

from services.gateway.api_keys import ApiKeys
from services.runtime.redis_client import redis_client
from services.runtime.settings import Settings
from tests.support.gateway import extra_gateway


@pytest.fixture(scope="module")
def secured(pipeline: Settings):
    """A gateway on the pipeline with INDEXFLOW_AUTH=api_keys, re-checking stream keys every second."""
    with extra_gateway(INDEXFLOW_AUTH="api_keys", INDEXFLOW_GATEWAY_STREAM_KEY_CHECK_SECONDS="1") as url:
        yield url


@pytest.fixture
def api_keys(pipeline: Settings) -> ApiKeys:
    return ApiKeys(redis_client(pipeline), pipeline.keys)


def test_health_without_a_key_is_a_bare_status(secured: str, api_keys: ApiKeys):
    anonymous = httpx.get(f"{secured}/healthz", timeout=10)
    assert anonymous.status_code == 200 and anonymous.json() == {"ok": True}, anonymous.text
    key, _ = api_keys.create("healthy")
    keyed = httpx.get(f"{secured}/healthz", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert keyed.status_code == 200 and keyed.json()["dependencies"]["redis"] is True, keyed.text
    forged = httpx.get(f"{secured}/healthz", headers={"Authorization": "Bearer ifx-forged"}, timeout=10)
    assert forged.json() == {"ok": True}, forged.text


@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/dashboard.js", "/healthz", "/v1/datasets"])
def test_every_answer_forbids_framing_sniffing_and_foreign_scripts(secured: str, path: str):
    response = httpx.get(f"{secured}{path}", timeout=10)
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy, policy


def test_a_revoked_key_loses_its_event_stream(secured: str, api_keys: ApiKeys):
    key, record = api_keys.create("streamer")
    with httpx.stream("GET", f"{secured}/v1/ops/events", headers={"Authorization": f"Bearer {key}"},
                      timeout=30) as stream:
        assert stream.status_code == 200
        chunks = stream.iter_bytes()
        assert next(chunks).startswith(b"event: overview")
        assert api_keys.revoke(record.key_id)
        revoked_at = time.monotonic()
        for _ in chunks:  # overview events keep coming every 2 s while the stream is open
            assert time.monotonic() - revoked_at < 10, "the stream outlived its revoked key"
    assert time.monotonic() - revoked_at < 10
