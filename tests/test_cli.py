"""The command line against the running pipeline: ingest, status, search."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
from click.testing import CliRunner

from services.cli.main import SAMPLES, cli
from services.runtime.settings import Settings
from tests.conftest import free_port


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_ingest_status_and_search(pipeline: Settings, tmp_path: Path):
    summary = orjson.loads(run("ingest", str(SAMPLES), "--dataset", "cli", "--tenant", "cli", "--json"))
    assert summary["documents"] == len(list(SAMPLES.iterdir()))
    assert summary["completed"] == summary["documents"] and summary["error"] == 0 and summary["errors"] == {}
    assert summary["segments"] >= summary["documents"] and summary["seconds"] > 0

    overview = orjson.loads(run("status", "--json"))
    assert all(s["healthy"] for s in overview["stack"].values())
    assert set(overview["services"]) == {"extractor", "splitter", "embedder", "indexer", "projector", "watchdog", "sources",
                                         "gateway"}
    assert overview["documents"]["completed"] >= summary["completed"]

    hits = orjson.loads(run("search", "reciprocal rank fusion", "--dataset", "cli", "--tenant", "cli", "--json"))
    assert hits[0]["name"] == "hybrid-search.html"
    document = orjson.loads(run("status", hits[0]["document_id"], "--tenant", "cli", "--json"))
    assert document["status"] == "completed" and document["name"] == "hybrid-search.html"

    empty = tmp_path / "empty.txt"
    empty.write_text("")
    failed = orjson.loads(run("ingest", str(empty), "--dataset", "cli", "--tenant", "cli", "--json"))
    assert failed["error"] == 1 and failed["errors"] == {"empty document (0 bytes)": 1}


def test_health_reports_dependencies_and_service_liveness(pipeline: Settings):
    health = httpx.get(f"{pipeline.gateway_url}/healthz", timeout=10).json()
    assert health["dependencies"] == {"kafka": True, "elasticsearch": True, "redis": True}
    consumers = {"extractor", "splitter", "embedder", "indexer", "projector", "watchdog"}
    deadline = time.monotonic() + 30
    while not consumers <= set(health["seconds_since_heartbeat"]) and time.monotonic() < deadline:
        time.sleep(1)
        health = httpx.get(f"{pipeline.gateway_url}/healthz", timeout=10).json()
    assert consumers <= set(health["seconds_since_heartbeat"]), health
    assert all(age < 30 for age in health["seconds_since_heartbeat"].values()), health
    assert CliRunner().invoke(cli, ["alive", "indexer"]).exit_code == 0
    assert CliRunner().invoke(cli, ["alive", "no-such-service"]).exit_code == 1

    # A gateway whose Elasticsearch is unreachable is not ready, and says which dependency is down.
    port = free_port()
    env = dict(os.environ, INDEXFLOW_ELASTICSEARCH_PORT=str(free_port()), INDEXFLOW_GATEWAY_PORT=str(port))
    gateway = subprocess.Popen([sys.executable, "-m", "services.gateway"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.3)
        assert response.status_code == 503
        assert response.json()["dependencies"] == {"kafka": True, "elasticsearch": False, "redis": True}
    finally:
        gateway.terminate()
        gateway.wait(30)
