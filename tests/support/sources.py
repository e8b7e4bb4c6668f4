"""Sources through the gateway, for tests: add one, sync it and wait for its run, wait for the
dataset's documents."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from deploy.supervisor import read_status
from schemas import TERMINAL_STATUSES
from services.sources.publishing import document_id_for


def create_dataset(http: httpx.Client, name: str, **options) -> str:
    response = http.post("/v1/datasets", json={"name": name, **options})
    assert response.status_code == 200, response.text
    return response.json()["id"]


def add_source(http: httpx.Client, dataset: str, kind: str, config: dict, **fields) -> dict:
    response = http.post(f"/v1/datasets/{dataset}/sources",
                         json={"kind": kind, "name": f"{kind} source", "config": config, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def last_run(http: httpx.Client, dataset: str, source_id: str) -> dict | None:
    response = http.get(f"/v1/datasets/{dataset}/sources/{source_id}")
    assert response.status_code == 200, response.text
    return response.json()["last_run"]


def wait_run(http: httpx.Client, dataset: str, source_id: str, timeout: float = 120.0) -> dict:
    """The source's last run once it has finished (waiting for the schedule's first, if need be)."""
    deadline = time.monotonic() + timeout
    while (run := last_run(http, dataset, source_id)) is None or run["status"] == "running":
        assert time.monotonic() < deadline, f"run still running after {timeout}s: {run}"
        time.sleep(0.2)
    return run


def sync(http: httpx.Client, dataset: str, source_id: str, timeout: float = 120.0) -> dict:
    """Ask for a run and answer it once finished."""
    response = http.post(f"/v1/datasets/{dataset}/sources/{source_id}/sync")
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "running"
    return wait_run(http, dataset, source_id, timeout)


def settled_documents(http: httpx.Client, dataset: str, count: int, timeout: float = 180.0) -> dict[str, dict]:
    """Document id -> state of each of the dataset's ``count`` documents (deleted ones too), once
    every one is terminal."""
    deadline = time.monotonic() + timeout
    while True:
        response = http.get(f"/v1/datasets/{dataset}/documents", params={"limit": 1000, "deleted": "true"})
        assert response.status_code == 200, response.text
        states = {s["document_id"]: s for s in response.json()["data"]}
        if len(states) >= count and all(s["status"] in TERMINAL_STATUSES for s in states.values()):
            return states
        assert time.monotonic() < deadline, f"documents not terminal after {timeout}s"
        time.sleep(0.3)


def found(http: httpx.Client, dataset: str, query: str, **filters) -> set[str]:
    """The ids of the documents a full-text search finds."""
    response = http.post(f"/v1/datasets/{dataset}/retrieve",
                         json={"query": query, "mode": "full_text", "top_k": 10, **filters})
    assert response.status_code == 200, response.text
    return {record["document_id"] for record in response.json()["records"]}


def eventually(check, timeout: float = 60.0):
    """``check()``'s answer once it is truthy (a completed revision is searchable after a refresh)."""
    deadline = time.monotonic() + timeout
    while not (answer := check()):
        assert time.monotonic() < deadline, f"not so after {timeout}s"
        time.sleep(0.3)
    return answer


def killed_and_resumed(http: httpx.Client, dataset: str, source_id: str, state_dir: Path,
                       items: dict[str, str]) -> dict:
    """Sync the source, SIGKILL the pipeline's sources service once the run has created a few of
    ``items`` (item id -> document name), and check that the same run resumes (the supervisor
    restarts the service) and ends with one document per item, each counted once. The run."""
    response = http.post(f"/v1/datasets/{dataset}/sources/{source_id}/sync")
    assert response.status_code == 202
    run = eventually(lambda: (r := last_run(http, dataset, source_id))["created"] >= 20 and r, timeout=60)
    restarts = read_status(state_dir)["sources"]["restarts"]
    os.kill(read_status(state_dir)["sources"]["pid"], signal.SIGKILL)
    assert run["status"] == "running" and run["created"] < len(items), "the sync ended before it could be killed"

    resumed = wait_run(http, dataset, source_id, timeout=180)
    assert read_status(state_dir)["sources"]["restarts"] > restarts
    assert resumed["id"] == run["id"], "the run resumed, not started over"
    assert (resumed["status"], resumed["listed"], resumed["created"], resumed["updated"], resumed["unchanged"],
            resumed["failed"]) == ("completed", len(items), len(items), 0, 0, 0)
    # The same documents as an undisturbed sync: one per item, under the id its item names, once.
    states = settled_documents(http, dataset, len(items))
    assert {i: s["name"] for i, s in states.items()} == {
        document_id_for(source_id, item): name for item, name in items.items()}
    assert {s["status"] for s in states.values()} == {"completed"}
    again = sync(http, dataset, source_id)
    assert (again["created"], again["updated"], again["unchanged"], again["deleted"]) == (0, 0, len(items), 0)
    return resumed
