"""OCR through the pipeline, as a user sets it: on by default, off for a dataset, back on for one
document of it, in the document's own language; its pages and time in the document's state, and
what it read found by search."""

from __future__ import annotations

import io
import json
import time
import uuid

import httpx
import pytest

from services.gateway.api_keys import ApiKeys
from services.runtime.redis_client import redis_client
from services.runtime.settings import Settings
from tests.support.scans import page_image


@pytest.fixture(scope="module")
def http(pipeline: Settings) -> httpx.Client:
    tenant = f"ocr-{uuid.uuid4().hex[:8]}"
    key = ApiKeys(redis_client(pipeline), pipeline.keys).create(tenant, "ocr")[0]
    with httpx.Client(base_url=pipeline.gateway_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        yield client


def upload_scan(http: httpx.Client, dataset: str, name: str, text: str, options: dict | None = None) -> str:
    png = io.BytesIO()
    page_image(text).save(png, format="PNG")
    answer = http.post(f"/v1/datasets/{dataset}/document/create-by-file", files={"file": (name, png.getvalue())},
                       data={"data": json.dumps(options or {})})
    assert answer.status_code == 200, answer.text
    return answer.json()["document"]["id"]


def settled(http: httpx.Client, dataset: str, document: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        answer = http.get(f"/v1/datasets/{dataset}/documents/{document}")
        detail = answer.json()
        if answer.status_code == 200 and detail["indexing_status"] in ("completed", "error"):
            return detail
        assert time.monotonic() < deadline, detail
        time.sleep(0.3)


def test_ocr_is_on_by_default_off_for_a_dataset_and_on_again_for_one_document(http: httpx.Client):
    default = http.post("/v1/datasets", json={"name": f"Scans {uuid.uuid4().hex[:6]}"}).json()["id"]
    scanned = upload_scan(http, default, "memo.png", "The harbour crane inspection is due in April")
    state = settled(http, default, scanned)
    assert state["indexing_status"] == "completed", state
    assert state["ocr_pages"] == 1 and state["ocr_seconds"] > 0
    found = http.post(f"/v1/datasets/{default}/retrieve", json={"query": "harbour crane inspection",
                                                                "mode": "full_text"}).json()
    assert found["records"] and "crane" in found["records"][0]["segment"]["content"]

    no_ocr = http.post("/v1/datasets", json={"name": f"No OCR {uuid.uuid4().hex[:6]}",
                                              "ocr": {"enabled": False}}).json()
    assert no_ocr["ocr"] == {"enabled": False, "languages": None}
    skipped = settled(http, no_ocr["id"], upload_scan(http, no_ocr["id"], "skip.png", "Nothing to see here"))
    assert skipped["indexing_status"] == "error"
    assert "OCR is turned off" in skipped["error"]

    wanted = upload_scan(http, no_ocr["id"], "keep.png", "The flood barrier test is in March",
                         {"ocr": {"enabled": True, "languages": "eng"}})
    assert settled(http, no_ocr["id"], wanted)["indexing_status"] == "completed"


def test_a_language_that_is_not_installed_is_a_clear_error(http: httpx.Client):
    dataset = http.post("/v1/datasets", json={"name": f"Langs {uuid.uuid4().hex[:6]}"}).json()["id"]
    document = upload_scan(http, dataset, "x.png", "Some text", {"ocr": {"languages": "tlh"}})
    state = settled(http, dataset, document)
    assert state["indexing_status"] == "error" and "OCR language 'tlh' is not installed" in state["error"]
    refused = http.post(f"/v1/datasets/{dataset}/document/create-by-text",
                        json={"name": "y.txt", "text": "y", "ocr": {"languages": "eng; rm -rf /"}})
    assert refused.status_code == 400
