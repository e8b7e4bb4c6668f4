"""Searches are answered by worker processes of the gateway, not in the gateway's own process: a
tenant's heavy searches (a filter of tens of thousands of values) cost the workers' CPU, and the
gateway keeps its own for every tenant's other requests. A killed worker is replaced; a worker
is handed to the tenants with searches waiting in turn."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from services.gateway.search_workers import SearchWorkers
from services.gateway.settings import GatewaySettings
from services.runtime.settings import Settings
from tests.support.gateway import extra_gateway_process, keyed_client

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def children(pid: int) -> list[int]:
    return [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()]


@pytest.fixture(scope="module")
def gateway(pipeline: Settings) -> Iterator[tuple[str, int]]:
    with extra_gateway_process(INDEXFLOW_AUTH="api_keys", INDEXFLOW_GATEWAY_SEARCH_WORKERS="2") as (url, process):
        yield url, process.pid


def heavy_filter() -> bytes:
    values = [f"value-{n}" for n in range(10_000)]
    return orjson.dumps({"query": "harbour tides", "retrieval_model": {
        "search_method": "full_text_search", "reranking_enable": False, "top_k": 5,
        "score_threshold_enabled": False, "metadata_filtering_conditions": {
            "logical_operator": "or",
            "conditions": [{"name": f"field{i}", "comparison_operator": "in", "value": values} for i in range(3)]}}})


def test_a_tenants_searches_cost_the_workers_cpu_not_the_gateways(pipeline: Settings, gateway: tuple[str, int]):
    url, pid = gateway
    _, http = keyed_client(pipeline, "work", url)
    assert http.post("/v1/datasets", json={"name": "filtered"}).status_code == 200
    dataset = http.get("/v1/datasets").json()["data"][0]["id"]
    body = heavy_filter()
    search = f"/v1/datasets/{dataset}/retrieve"
    assert http.post(search, content=body, headers={"Content-Type": "application/json"}).status_code == 200
    workers = children(pid)
    gateway_before, workers_before = cpu_seconds(pid), sum(cpu_seconds(w) for w in workers)
    for _ in range(30):
        response = http.post(search, content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 200, response.text
        assert response.json()["records"] == []
    gateway_spent = cpu_seconds(pid) - gateway_before
    workers_spent = sum(cpu_seconds(w) for w in workers) - workers_before
    # Parsing and checking 30,000 values is the workers' (6 to 10 ms a search here); the gateway
    # reads the bytes and hands them over (about 3 ms, most of it the middlewares every request
    # passes). The first bound only says the workers did the searches.
    assert workers_spent > 0.1, (gateway_spent, workers_spent)
    assert gateway_spent < workers_spent, (gateway_spent, workers_spent)


def stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()  # from field 3, state


def test_workers_yield_the_cpu_to_the_gateway_from_a_session_of_their_own(pipeline: Settings,
                                                                            gateway: tuple[str, int]):
    url, pid = gateway
    _, http = keyed_client(pipeline, "sessions", url)
    assert http.post("/v1/retrieve", json={"query": "tides"}).status_code == 200  # the workers are up
    workers = [child for child in children(pid)
               if "spawn_main" in Path(f"/proc/{child}/cmdline").read_text()]
    assert len(workers) == 2, workers
    gateway_session = stat_fields(pid)[3]
    autogroups = Path(f"/proc/{pid}/autogroup")
    for worker in workers:
        # A worker the pool started for the next search may not have run its start-up yet.
        deadline = time.monotonic() + 10
        while stat_fields(worker)[3] == gateway_session and time.monotonic() < deadline:
            time.sleep(0.05)
        fields = stat_fields(worker)
        assert fields[3] != gateway_session and fields[2] == str(worker)  # own session and group
        assert int(fields[16]) == GatewaySettings().search_niceness
        # With autogroup scheduling a niceness only weighs within a session; the session's own
        # share is lowered too, or the workers would take as much CPU as the gateway's session.
        if autogroups.exists():
            assert Path(f"/proc/{worker}/autogroup").read_text() != autogroups.read_text()
            assert Path(f"/proc/{worker}/autogroup").read_text().split()[-1] == str(GatewaySettings().search_niceness)


def test_a_bad_body_or_dataset_is_answered_in_the_api_error_shape(pipeline: Settings, gateway: tuple[str, int]):
    url, _ = gateway
    _, http = keyed_client(pipeline, "work", url)
    invalid = http.post("/v1/retrieve", content=b"{not json", headers={"Content-Type": "application/json"})
    assert invalid.status_code == 400 and invalid.json()["code"] == "invalid_param", invalid.text
    zero = http.post("/v1/retrieve", json={"query": "q", "top_k": 0})
    assert zero.status_code == 400 and zero.json()["detail"][0]["loc"] == ["body", "top_k"], zero.text
    unknown = http.post("/v1/datasets/nobody-has-it/retrieve", json={"query": "q"})
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found", unknown.text


def test_a_killed_search_worker_is_replaced(pipeline: Settings, gateway: tuple[str, int]):
    url, pid = gateway
    _, http = keyed_client(pipeline, "work", url)
    assert http.post("/v1/retrieve", json={"query": "before"}).status_code == 200
    for worker in children(pid):
        os.kill(worker, signal.SIGKILL)
    statuses = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and statuses[-3:] != [200] * 3:
        response = http.post("/v1/retrieve", json={"query": "after"})
        statuses.append(response.status_code)
        if response.status_code == 503:
            assert response.headers["Retry-After"] == "1" and response.json()["code"] == "service_unavailable"
    assert statuses[-3:] == [200] * 3, statuses
    assert set(statuses) <= {200, 503}, statuses


def test_workers_are_handed_to_the_tenants_waiting_in_turn():
    """One worker, tenant A with three searches waiting and B with one after them: B's is the
    second answered, not the fourth."""
    workers = SearchWorkers(Settings(), GatewaySettings(search_workers=1))
    order: list[str] = []

    async def search(tenant: str) -> None:
        await workers._turn(tenant)
        order.append(tenant)
        await asyncio.sleep(0.01)
        workers._next_turn()

    async def main() -> None:
        await workers._turn("holder")  # the one worker busy
        waiting = [asyncio.create_task(search(tenant)) for tenant in ("a", "a", "a", "b")]
        await asyncio.sleep(0.01)
        workers._next_turn()
        await asyncio.gather(*waiting)

    asyncio.run(main())
    assert order == ["a", "b", "a", "a"]


def test_what_a_search_measures_in_its_worker_shows_on_the_gateways_metrics(pipeline: Settings,
                                                                            gateway: tuple[str, int]):
    url, _ = gateway
    _, http = keyed_client(pipeline, "work", url)

    def searches() -> float:
        found = re.search(r'^indexflow_search_seconds_count\{mode="full_text",where="elasticsearch"\} (\S+)$',
                          httpx.get(f"{url}/metrics").text, re.M)
        return float(found.group(1)) if found else 0.0

    before = searches()
    for _ in range(3):
        assert http.post("/v1/retrieve", json={"query": "measured", "mode": "full_text"}).status_code == 200
    assert searches() == before + 3
