"""Hostile or careless requests get a clear HTTP error before anything is stored or published, and
uploads reach the blob store as streams, byte for byte. The test pipeline runs the gateway with
small limits (tests/conftest.py) so they are quick to cross."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import orjson
import pytest

from services.runtime.settings import Settings
from tests.support.gateway import Gateway

UPLOAD_LIMIT = 8 * 2**20  # INDEXFLOW_GATEWAY_MAX_UPLOAD_BYTES in the test pipeline
JSON_LIMIT = 4 * 2**20  # INDEXFLOW_GATEWAY_MAX_JSON_BYTES


@pytest.fixture
def gateway(pipeline: Settings, request: pytest.FixtureRequest) -> Gateway:
    return Gateway(pipeline, tenant=request.node.originalname.replace("_", "-")[5:45], dataset="limits")


def stored_blobs(settings: Settings, tenant: str) -> list[Path]:
    folder = settings.state_dir / "blobs" / tenant
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_an_upload_over_the_limit_is_refused_and_nothing_is_stored(pipeline: Settings, gateway: Gateway):
    tenant = gateway.http.headers["X-Tenant-Id"]
    response = gateway.http.post(
        "/v1/datasets/limits/document/create-by-file", files={"file": ("big.txt", b"a" * (UPLOAD_LIMIT + 1))},
    )
    assert response.status_code == 413 and "limit" in response.text, response.text
    assert stored_blobs(pipeline, tenant) == []


def test_a_chunked_body_without_a_length_is_cut_off_at_the_limit(pipeline: Settings, gateway: Gateway):
    boundary = "limitboundary"

    def body():
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.txt"\r\n\r\n'.encode()
        for _ in range(UPLOAD_LIMIT // 2**20 + 4):
            yield b"b" * 2**20
        yield f"\r\n--{boundary}--\r\n".encode()

    response = gateway.http.post(
        "/v1/datasets/limits/document/create-by-file", content=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413, response.text
    assert stored_blobs(pipeline, gateway.http.headers["X-Tenant-Id"]) == []


def test_a_json_body_over_its_limit_is_refused(gateway: Gateway):
    response = gateway.http.post(
        "/v1/datasets/limits/document/create-by-text", json={"name": "huge.txt", "text": "word " * (JSON_LIMIT // 4)},
    )
    assert response.status_code == 413 and "limit" in response.text, response.text


@pytest.mark.parametrize("metadata, problem", [
    ({f"field{n}": n for n in range(101)}, "at most 100"),
    ({"author": "x" * 5000}, "at most 4096"),
    ({"k" * 200: "v"}, "at most 128"),
])
def test_oversized_metadata_is_refused(gateway: Gateway, metadata: dict, problem: str):
    response = gateway.http.post(
        "/v1/datasets/limits/document/create-by-text", json={"name": "m.txt", "text": "fine", "metadata": metadata},
    )
    assert response.status_code == 400 and problem in response.text, response.text


def test_an_upload_reaches_the_blob_store_byte_for_byte(pipeline: Settings, gateway: Gateway):
    payload = os.urandom(UPLOAD_LIMIT - 4096)
    response = gateway.http.post(
        "/v1/datasets/limits/document/create-by-file", files={"file": ("random.bin", payload)},
    )
    assert response.status_code == 200, response.text
    [blob] = stored_blobs(pipeline, gateway.http.headers["X-Tenant-Id"])
    assert hashlib.sha256(blob.read_bytes()).digest() == hashlib.sha256(payload).digest()


@pytest.mark.parametrize("headers", [
    [("Content-Type", "application/json"), ("Content-Type", "multipart/form-data; boundary=x")],
    [("Content-Type", "multipart/form-data; boundary=x"), ("Content-Type", "application/json")],
    [("Content-Type", "application/json, multipart/form-data; boundary=x")],
], ids=["json-then-multipart", "multipart-then-json", "both-in-one"])
def test_no_content_type_trickery_lifts_the_json_limit(gateway: Gateway, headers: list[tuple[str, str]]):
    body = orjson.dumps({"name": "two-types.txt", "text": "word " * (JSON_LIMIT // 4)})
    response = gateway.http.post("/v1/datasets/limits/document/create-by-text", content=body, headers=headers)
    assert response.status_code in (400, 413), response.text
    assert response.json()["status"] == response.status_code  # Dify's error shape
    listed = gateway.http.get("/v1/datasets/limits/documents")
    assert listed.status_code == 404 or listed.json()["data"] == [], listed.text

