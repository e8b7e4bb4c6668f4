"""One embedded stack (real tansu broker, noida-db Elasticsearch API, redis-server) for the whole
test session, on free loopback ports under a temporary state dir; stopped at the end."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from deploy.stack import Stack
from services.runtime.kafka import admin_client
from services.runtime.settings import Settings
from topics import TOPICS, apply_topics

SHARED = Path(__file__).resolve().parents[2] / "shared"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports."""
    while True:
        first = free_port()
        if first + count <= 65535 and all(_free(first + i) for i in range(1, count)):
            return first


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def stack_env(state_dir: Path) -> dict[str, str]:
    return {
        "INDEXFLOW_STATE_DIR": str(state_dir),
        "INDEXFLOW_KAFKA_PORT": str(free_port()),
        "INDEXFLOW_ELASTICSEARCH_PORT": str(free_port()),
        "INDEXFLOW_REDIS_PORT": str(free_port()),
        "INDEXFLOW_CACHE_REDIS_PORT": str(free_port()),
        "INDEXFLOW_BUCKET_PORT": str(free_port()),
        "INDEXFLOW_METRICS_PORT": "0",  # services tests start on their own serve none; the pipeline's do
    }


@pytest.fixture(scope="session")
def stack_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    env = stack_env(tmp_path_factory.mktemp("stack"))
    # Service processes started by tests inherit the same stack through the environment.
    os.environ.update(env)
    stack = Stack(Settings())
    stack.up()
    try:
        yield Settings()
    finally:
        stack.down()


@pytest.fixture
def settings(stack_settings: Settings) -> Iterator[Settings]:
    """Settings with a topic prefix of the test's own, so tests never see each other's records."""
    saved = os.environ.get("INDEXFLOW_TOPIC_PREFIX")
    os.environ["INDEXFLOW_TOPIC_PREFIX"] = f"t{uuid.uuid4().hex[:10]}."
    try:
        yield Settings()
    finally:
        if saved is None:
            os.environ.pop("INDEXFLOW_TOPIC_PREFIX", None)
        else:
            os.environ["INDEXFLOW_TOPIC_PREFIX"] = saved


@pytest.fixture
def pipeline_topics(settings: Settings) -> Settings:
    report = apply_topics(admin_client(settings), TOPICS, settings)
    assert report.ok, report.mismatches
    return settings


@pytest.fixture(scope="session")
def pipeline(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Every service running under the supervisor, as `indexflow up` runs them, on topics of
    their own; yields the settings to reach them. Stopped (gracefully) at the end."""
    from services.cli.pipeline import start_services, stop_services

    env = {
        "INDEXFLOW_TOPIC_PREFIX": "e2e.",
        "INDEXFLOW_GATEWAY_PORT": str(free_port()),
        "INDEXFLOW_METRICS_PORT": str(free_ports(8)),  # one for each service the supervisor runs
        "TIKTOKEN_CACHE_DIR": str(tmp_path_factory.mktemp("tiktoken")),
        # A quarter of the default, so documents of a few hundred chunks already cross record limits.
        "INDEXFLOW_MAX_RECORD_BYTES": "262144",
        # Small request limits, so the gateway's limit tests cross them quickly.
        "INDEXFLOW_GATEWAY_MAX_UPLOAD_BYTES": str(8 * 2**20),
        "INDEXFLOW_GATEWAY_MAX_JSON_BYTES": str(4 * 2**20),
        # The one folder folder sources may read (tests/test_sources_e2e.py writes under it).
        "INDEXFLOW_SOURCES_FOLDER_ROOTS": orjson.dumps([str(tmp_path_factory.mktemp("sources"))]).decode(),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    settings = Settings()
    report = apply_topics(admin_client(settings), TOPICS, settings)
    assert report.ok, report.mismatches
    start_services(settings, timeout=120)
    # The gateway answers before every stage's consumers have joined their groups (the embedded
    # broker's first join takes seconds): one document end to end says the whole pipeline is in.
    from tests.support.gateway import Gateway

    warmup = Gateway(settings, tenant="warmup", dataset="warmup")
    accepted = warmup.create_text("warmup.txt", "The pipeline is warm.")
    assert warmup.wait(accepted["document_id"], accepted["revision"], timeout=120)["status"] == "completed"
    try:
        yield settings
    finally:
        stop_services(settings)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
