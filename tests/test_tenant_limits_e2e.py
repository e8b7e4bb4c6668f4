"""Per-tenant limits behind a gateway requiring API keys: documents, stored bytes, datasets,
requests per second, live event streams and requests in flight, each refused with the limit
named (429 and Retry-After for rates and concurrency, 413/403 for sizes and counts), set by the
operator (`indexflow tenants set-limits`) and shown with their use in the dashboard's overview.
Another tenant is never refused for what one tenant does."""

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

IN_FLIGHT = 2  # the limited gateway's requests in flight per tenant


@pytest.fixture(scope="module")
def limited(pipeline: Settings) -> Iterator[str]:
    with extra_gateway(INDEXFLOW_AUTH="api_keys", INDEXFLOW_GATEWAY_MAX_REQUESTS_IN_FLIGHT_PER_TENANT=str(IN_FLIGHT),
                       INDEXFLOW_GATEWAY_LIMITS_CACHE_SECONDS="0.2") as url:
        yield url


def cli_ok(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def refused(response: httpx.Response, status: int, names: str) -> None:
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["status"] == status and answer["code"] and names in answer["message"], answer
    if status == 429:
        assert int(response.headers["Retry-After"]) >= 1


def test_documents_bytes_and_datasets_are_bounded_per_tenant(pipeline: Settings, limited: str):
    tenant, http = keyed_client(pipeline, "lim", limited)
    cli_ok("tenants", "set-limits", tenant, "--documents", "2", "--bytes", "3000", "--datasets", "1")
    shown = cli_ok("tenants", "show", tenant)
    assert "documents" in shown and "3000" in shown.replace(",", ""), shown

    def write(dataset: str, name: str, size: int) -> httpx.Response:
        return http.post(f"/v1/datasets/{dataset}/document/create-by-text", json={"name": name, "text": "x" * size})

    first = write("quota", "a.txt", 1000)
    assert first.status_code == 200, first.text
    second = write("quota", "b.txt", 1000)
    assert second.status_code == 200, second.text
    refused(write("quota", "c.txt", 10), 403, "documents")
    refused(write("another", "d.txt", 10), 403, "datasets")

    document_id = first.json()["document_id"]
    grown = http.post(f"/v1/datasets/quota/documents/{document_id}/update-by-text", json={"text": "y" * 1500})
    assert grown.status_code == 200, grown.text  # an update is no new document: 2,500 bytes now, 1,500 after b's delete
    assert http.delete(f"/v1/datasets/quota/documents/{second.json()['document_id']}").status_code == 204
    too_big = http.post("/v1/datasets/quota/document/create-by-file", files={"file": ("big.txt", b"z" * 1600)})
    refused(too_big, 413, "bytes")
    fits = http.post("/v1/datasets/quota/document/create-by-file", files={"file": ("small.txt", b"z" * 1400)})
    assert fits.status_code == 200, fits.text

    limits = http.get("/v1/ops/overview").json()["limits"]
    assert limits["documents"] == {"limit": 2, "used": 2}, limits
    assert limits["bytes"] == {"limit": 3000, "used": 2900}, limits
    assert limits["datasets"] == {"limit": 1, "used": 1}, limits
    assert "2900" in cli_ok("tenants", "show", tenant).replace(",", "")


def test_requests_per_second_are_bounded_per_tenant(pipeline: Settings, limited: str):
    tenant, http = keyed_client(pipeline, "lim", limited)
    _, other = keyed_client(pipeline, "lim", limited)
    cli_ok("tenants", "set-limits", tenant, "--rps", "2")
    answers = [http.get("/v1/datasets") for _ in range(30)]
    limited_answers = [a for a in answers if a.status_code == 429]
    assert limited_answers, [a.status_code for a in answers]
    refused(limited_answers[0], 429, "requests per second")
    assert other.get("/v1/datasets").status_code == 200


def test_live_event_streams_are_bounded_per_tenant(pipeline: Settings, limited: str):
    tenant, http = keyed_client(pipeline, "lim", limited)
    _, other = keyed_client(pipeline, "lim", limited)
    cli_ok("tenants", "set-limits", tenant, "--streams", "2")
    first, second = (http.stream("GET", "/v1/ops/events") for _ in range(2))
    with first as one, second as two:
        assert one.status_code == two.status_code == 200
        chunks = one.iter_bytes()  # kept: a dropped iterator closes its stream
        assert next(chunks).startswith(b"event: overview")
        refused(http.get("/v1/ops/events"), 429, "streams")
        with other.stream("GET", "/v1/ops/events") as elsewhere:
            assert elsewhere.status_code == 200
    # Both closed: the tenant may open streams again once the gateway has seen them go.
    for _ in range(50):
        with http.stream("GET", "/v1/ops/events") as again:
            if again.status_code == 200:
                break
        time.sleep(0.2)
    assert again.status_code == 200


def test_a_tenants_requests_in_flight_are_capped_before_they_start(pipeline: Settings, limited: str):
    tenant, http = keyed_client(pipeline, "lim", limited)
    _, other = keyed_client(pipeline, "lim", limited)
    release = threading.Event()

    def trickled_upload() -> Iterator[bytes]:
        boundary = "inflight"
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.txt"\r\n\r\n'.encode()
        release.wait(30)  # the body stays unfinished: the request stays in flight
        yield f"slow upload\r\n--{boundary}--\r\n".encode()

    def upload() -> None:
        http.post("/v1/datasets/slow/document/create-by-file", content=trickled_upload(),
                  headers={"Content-Type": "multipart/form-data; boundary=inflight"})

    uploads = [threading.Thread(target=upload) for _ in range(IN_FLIGHT)]
    try:
        for thread in uploads:
            thread.start()
        time.sleep(1)  # both uploads have started
        refused(http.get("/v1/datasets"), 429, "in flight")
        assert other.get("/v1/datasets").status_code == 200
    finally:
        release.set()
        for thread in uploads:
            thread.join(30)
    assert http.get("/v1/datasets").status_code == 200
