"""A second pipeline, with settings of its own, on the session's embedded stack."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services.runtime.kafka import admin_client
from services.runtime.settings import Settings
from tests.support.gateway import Gateway
from topics import TOPICS, apply_topics


@contextmanager
def extra_pipeline(state_dir: Path, **env: str) -> Iterator[Settings]:
    """Every service under a supervisor of its own (its state dir), on topics, indices and keys of
    its own (its prefix), with ``env`` on top of the session's; yields the settings to reach it."""
    from services.cli.pipeline import start_services, stop_services
    from tests.conftest import free_port, free_ports

    env = {
        "INDEXFLOW_STATE_DIR": str(state_dir),
        "INDEXFLOW_TOPIC_PREFIX": f"x{uuid.uuid4().hex[:8]}.",
        "INDEXFLOW_GATEWAY_PORT": str(free_port()),
        "INDEXFLOW_METRICS_PORT": str(free_ports(8)),
        **env,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the supervisor and its services take the environment when they start
    try:
        settings = Settings()
        report = apply_topics(admin_client(settings), TOPICS, settings)
        assert report.ok, report.mismatches
        start_services(settings, timeout=120)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    try:
        warmup = Gateway(settings, tenant="warmup", dataset="warmup")
        accepted = warmup.create_text("warmup.txt", "The pipeline is warm.")
        assert warmup.wait(accepted["document_id"], accepted["revision"], timeout=120)["status"] == "completed"
        yield settings
    finally:
        stop_services(settings)
