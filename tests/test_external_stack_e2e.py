"""`indexflow up` against servers the deployment runs itself: the settings name them by URL, so
no embedded server starts; the services run against them, and a document goes end to end. The
"external" servers here are the test session's (real tansu, noida-db and Redis on loopback)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from services.runtime.settings import Settings
from tests.conftest import free_port, free_ports


def indexflow(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "indexflow"), *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def external_env(stack_settings: Settings, tmp_path: Path) -> dict[str, str]:
    s = stack_settings
    return {
        **os.environ,
        "INDEXFLOW_STATE_DIR": str(tmp_path / "state"),
        "INDEXFLOW_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{s.kafka_port}",
        "INDEXFLOW_ELASTICSEARCH_URL": s.elasticsearch_url,
        "INDEXFLOW_REDIS_URL": s.redis_url,
        "INDEXFLOW_CACHE_REDIS_URL": s.cache_redis_url,
        # The embedded ports point elsewhere: anything started there would be a server nobody asked for.
        "INDEXFLOW_KAFKA_PORT": str(free_port()),
        "INDEXFLOW_ELASTICSEARCH_PORT": str(free_port()),
        "INDEXFLOW_REDIS_PORT": str(free_port()),
        "INDEXFLOW_CACHE_REDIS_PORT": str(free_port()),
        "INDEXFLOW_GATEWAY_PORT": str(free_port()),
        "INDEXFLOW_METRICS_PORT": str(free_ports(8)),
        "INDEXFLOW_TOPIC_PREFIX": "external.",
        "INDEXFLOW_SESSION_TIMEOUT_MS": "6000",  # the embedded broker's first join waits half of it
    }


def test_up_runs_the_services_on_external_servers_and_starts_none(external_env: dict[str, str]):
    up = indexflow(external_env, "up")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "(external)" in up.stdout
        status = orjson.loads(indexflow(external_env, "status", "--json").stdout)
        assert {name for name, s in status["stack"].items() if s["address"]} == {
            "kafka", "elasticsearch", "redis", "redis-cache"}
        assert all(s["pid"] is None and s["healthy"] for s in status["stack"].values()), status["stack"]
        run_dir = Path(external_env["INDEXFLOW_STATE_DIR"]) / "run"
        assert sorted(p.name for p in run_dir.glob("*.pid")) == ["services.pid"], "an embedded server was started"

        # External Kafka means a real deployment: API keys, not open mode.
        key = indexflow(external_env, "keys", "create", "--tenant", "acme").stdout.strip().split()[-1]
        gateway = httpx.Client(base_url=f"http://127.0.0.1:{external_env['INDEXFLOW_GATEWAY_PORT']}",
                               headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert gateway.post("/v1/datasets/ops/document/create-by-text", json={"name": "x", "text": "x"},
                            headers={"Authorization": ""}).status_code == 401
        accepted = gateway.post("/v1/datasets/ops/document/create-by-text", json={
            "name": "runbook.txt", "text": "Restart the indexer before the embedder when the index is rebuilt."}).json()
        deadline = time.monotonic() + 120
        while (state := gateway.get(f"/v1/datasets/ops/documents/{accepted['document_id']}").json())["status"] not in (
                "completed", "error"):
            assert time.monotonic() < deadline, state
            time.sleep(0.3)
        assert state["status"] == "completed", state
        hits = gateway.post("/v1/datasets/ops/retrieve", json={"query": "restart the indexer"}).json()["records"]
        assert hits and hits[0]["document_id"] == accepted["document_id"]
    finally:
        down = indexflow(external_env, "down")
    assert down.returncode == 0 and "services" in down.stdout, down.stdout + down.stderr
    # Down stopped only what up started: the external servers still answer.
    assert httpx.get(external_env["INDEXFLOW_ELASTICSEARCH_URL"], timeout=5).status_code == 200


def test_up_refuses_an_external_server_that_does_not_answer(external_env: dict[str, str]):
    closed = free_port()
    up = indexflow({**external_env, "INDEXFLOW_ELASTICSEARCH_URL": f"http://127.0.0.1:{closed}"}, "up", timeout=120)
    assert up.returncode == 1
    assert f"elasticsearch at http://127.0.0.1:{closed} does not answer" in up.stdout.replace("\n", " ")
    assert not list((Path(external_env["INDEXFLOW_STATE_DIR"]) / "run").glob("*.pid")), "something was left running"
