"""A tenant's searches are CPU-bound work in the gateway's threads (a filter's values parsed, every
document's metadata checked): each tenant has a few of them running at once, beyond which its
searches are refused with 429 before their body is read, while other tenants' are answered."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from click.testing import CliRunner

from services.cli.main import cli
from services.runtime.settings import Settings
from tests.support.gateway import extra_gateway, keyed_client

SEARCHES = 2  # the limited gateway's searches at once per tenant


@pytest.fixture(scope="module")
def limited(pipeline: Settings) -> Iterator[str]:
    with extra_gateway(INDEXFLOW_AUTH="api_keys", INDEXFLOW_GATEWAY_MAX_SEARCHES_PER_TENANT=str(SEARCHES),
                       INDEXFLOW_GATEWAY_LIMITS_CACHE_SECONDS="0.2") as url:
        yield url


class HeldSearches:
    """``count`` searches of one client whose bodies stay unfinished: admitted, so in flight, until
    released."""

    def __init__(self, http: httpx.Client, count: int):
        self.http, self.release = http, threading.Event()
        self.threads = [threading.Thread(target=self._search) for _ in range(count)]

    def _body(self) -> Iterator[bytes]:
        yield b'{"query": "held '
        self.release.wait(30)
        yield b'search"}'

    def _search(self) -> None:
        self.http.post("/v1/retrieve", content=self._body(), headers={"Content-Type": "application/json"})

    def __enter__(self) -> HeldSearches:
        for thread in self.threads:
            thread.start()
        time.sleep(1)  # every one admitted
        return self

    def __exit__(self, *_: object) -> None:
        self.release.set()
        for thread in self.threads:
            thread.join(30)


def test_a_tenants_searches_beyond_its_share_are_refused_while_others_are_answered(pipeline: Settings, limited: str):
    _, http = keyed_client(pipeline, "srch", limited)
    _, other = keyed_client(pipeline, "srch", limited)
    with HeldSearches(http, SEARCHES):
        third = http.post("/v1/retrieve", json={"query": "one more"})
        assert third.status_code == 429, third.text
        assert third.json()["status"] == 429 and "searches" in third.json()["message"]
        assert int(third.headers["Retry-After"]) >= 1
        for path in ("/v1/datasets/any/retrieve", "/v1/datasets/any/hit-testing", "/retrieval"):
            assert http.post(path, json={"query": "one more"}).status_code == 429, path
        assert other.post("/v1/retrieve", json={"query": "another tenant"}).status_code == 200
        assert http.get("/v1/datasets").status_code == 200  # its other requests are not searches
    assert http.post("/v1/retrieve", json={"query": "after"}).status_code == 200


def test_the_operator_sets_a_tenants_searches(pipeline: Settings, limited: str):
    tenant, http = keyed_client(pipeline, "srch", limited)
    result = CliRunner().invoke(cli, ["tenants", "set-limits", tenant, "--searches", str(SEARCHES + 1)])
    assert result.exit_code == 0, result.output
    time.sleep(0.5)  # past the limited gateway's cache of the tenant's limits
    with HeldSearches(http, SEARCHES + 1):
        assert http.post("/v1/retrieve", json={"query": "one more"}).status_code == 429
    with HeldSearches(http, SEARCHES):
        assert http.post("/v1/retrieve", json={"query": "one more"}).status_code == 200
