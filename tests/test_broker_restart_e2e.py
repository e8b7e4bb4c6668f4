"""A Kafka broker restart in the middle of an ingest, through the gateway, on a stack of the test's
own: the broker is SIGKILLed and started again by `indexflow up` (in memory, so it comes back
empty: every record in flight is lost). The gateway takes writes again within seconds, and every
document, those whose records the restart lost included, ends completed soon after, not after the
15-minute stall rule."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from deploy.stack import Stack
from services.cli.pipeline import start_services, stop_services
from services.runtime.kafka import admin_client
from tests.conftest import free_port, free_ports
from tests.support.gateway import Gateway
from tests.support.stacks import own_stack
from topics import TOPICS, apply_topics


@pytest.fixture
def own_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with own_stack(tmp_path, monkeypatch, INDEXFLOW_GATEWAY_PORT=str(free_port()),
                   INDEXFLOW_METRICS_PORT=str(free_ports(8)), TIKTOKEN_CACHE_DIR=str(tmp_path / "tiktoken")) as stack:
        start_services(stack.settings, timeout=120)
        try:
            yield stack
        finally:
            stop_services(stack.settings)


def text(n: int) -> str:
    return f"Document {n} on tides, harbours and the estuary's turbines. " * 40


def test_documents_lost_with_the_broker_are_redriven_and_writes_resume(own_pipeline: Stack):
    settings = own_pipeline.settings
    gateway = Gateway(settings, tenant="acme", dataset="restart")
    accepted = {}
    for n in range(20):
        answer = gateway.create_text(f"d{n}.txt", text(n), document_id=f"d{n}")
        accepted[answer["document_id"]] = answer["revision"]
        if n == 4:  # these five are deleted just before the restart: acknowledged, never carried out
            for m in range(5):
                gateway.wait(f"d{m}", accepted[f"d{m}"])
    deleted = {f"d{m}": gateway.delete(f"d{m}")["revision"] for m in range(5)}
    accepted |= deleted

    kafka = next(c for c in own_pipeline.components if c.name == "kafka")
    os.kill(own_pipeline._process(kafka).pid(), signal.SIGKILL)
    time.sleep(1)
    own_pipeline.up()  # what `indexflow up` does: the broker back, empty
    assert apply_topics(admin_client(settings), TOPICS, settings).ok
    back = time.monotonic()

    first_write = None
    for n in range(20, 30):
        while True:
            response = gateway.http.post("/v1/datasets/restart/document/create-by-text",
                                         json={"name": f"d{n}.txt", "text": text(n), "document_id": f"d{n}"})
            if response.status_code == 200:
                break
            assert response.status_code == 503, response.text
            assert time.monotonic() - back < 60, "the gateway still refuses writes a minute after the restart"
        first_write = first_write or time.monotonic() - back
        accepted[f"d{n}"] = response.json()["revision"]
    assert first_write < 30, f"the first write was accepted {first_write:.0f}s after the broker was back"

    for document_id, revision in accepted.items():
        remaining = max(1.0, 120 - (time.monotonic() - back))
        state = gateway.wait(document_id, revision, timeout=remaining)
        assert state["status"] == ("deleted" if document_id in deleted else "completed"), state
