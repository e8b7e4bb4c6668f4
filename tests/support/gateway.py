"""A small client of the gateway API for tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from schemas import TERMINAL_STATUSES
from services.runtime.settings import Settings


class Gateway:
    def __init__(self, settings: Settings, tenant: str, dataset: str):
        self.http = httpx.Client(base_url=settings.gateway_url, headers={"X-Tenant-Id": tenant}, timeout=60)
        self.dataset = dataset

    def create_text(self, name: str, text: str, priority: str | None = None, **options) -> dict:
        response = self.http.post(
            f"/v1/datasets/{self.dataset}/document/create-by-text", json={"name": name, "text": text, **options},
            headers=_lane(priority),
        )
        assert response.status_code == 200, response.text
        return response.json()

    def update_text(self, document_id: str, text: str, priority: str | None = None, **options) -> dict:
        response = self.http.post(
            f"/v1/datasets/{self.dataset}/documents/{document_id}/update-by-text", json={"text": text, **options},
            headers=_lane(priority),
        )
        assert response.status_code == 200, response.text
        return response.json()

    def delete(self, document_id: str, priority: str | None = None) -> dict:
        response = self.http.delete(f"/v1/datasets/{self.dataset}/documents/{document_id}", headers=_lane(priority))
        assert response.status_code == 204 and not response.content, response.text
        return {"document_id": document_id, "revision": int(response.headers["X-Revision"])}

    def state(self, document_id: str) -> dict | None:
        """The document's state; a deleted one's last state (answered with 404, as Dify does)."""
        response = self.http.get(f"/v1/datasets/{self.dataset}/documents/{document_id}")
        if response.status_code == 404:
            return response.json().get("document")
        return response.json() if response.status_code == 200 else None

    def wait(self, document_id: str, revision: int, timeout: float = 120.0) -> dict:
        """The document's state once its ``revision`` is terminal."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state(document_id)
            if state and state["revision"] >= revision and state["status"] in TERMINAL_STATUSES:
                return state
            time.sleep(0.2)
        raise AssertionError(f"{document_id} revision {revision} not terminal after {timeout}s: {state}")

    def search(self, query: str, mode: str = "hybrid", top_k: int = 10) -> list[dict]:
        response = self.http.post(
            f"/v1/datasets/{self.dataset}/retrieve", json={"query": query, "mode": mode, "top_k": top_k}
        )
        assert response.status_code == 200, response.text
        return response.json()["records"]


def _lane(priority: str | None) -> dict[str, str]:
    return {"X-Priority": priority} if priority else {}


@contextmanager
def extra_gateway(**env: str) -> Iterator[str]:
    """A second gateway process on the running pipeline, with settings of its own; yields its URL."""
    with extra_gateway_process(**env) as (url, _process):
        yield url


@contextmanager
def extra_gateway_process(**env: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """``extra_gateway``, yielding its process too."""
    from tests.conftest import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "services.gateway"], env=dict(os.environ, INDEXFLOW_GATEWAY_PORT=str(port), **env),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the extra gateway did not start"
                time.sleep(0.2)
        yield url, process
    finally:
        process.terminate()
        process.wait(30)


def keyed_client(settings: Settings, prefix: str, url: str) -> tuple[str, httpx.Client]:
    """A new tenant (its id starting with ``prefix``) with an API key, and a client of ``url`` using it."""
    from services.gateway.api_keys import ApiKeys
    from services.runtime.redis_client import redis_client

    tenant = f"{prefix}-{uuid.uuid4().hex[:8]}"
    key, _ = ApiKeys(redis_client(settings), settings.keys).create(tenant)
    return tenant, httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
