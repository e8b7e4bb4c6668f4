"""An embedded stack of a bench's own: its own state directory and loopback ports, so it runs
beside a developer's stack or a test suite; every topic applied and every service running,
stopped at the end."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SERVERS = ("KAFKA", "ELASTICSEARCH", "REDIS", "CACHE_REDIS", "BUCKET", "GATEWAY")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def own_environment(name: str, **settings: str) -> None:
    """Point this process's settings (and the services it starts) at a state directory and ports
    of their own, with ``settings`` (INDEXFLOW_* variables) besides."""
    from deploy.probes import free_cluster_ports
    from deploy.stack import CLUSTER_MASTERS

    ports = {f"INDEXFLOW_{server}_PORT": str(free_port()) for server in SERVERS}
    if settings.get("INDEXFLOW_REDIS_CLUSTER") == "true":  # three masters, on that port and those below it
        ports["INDEXFLOW_REDIS_PORT"] = str(free_cluster_ports("127.0.0.1", CLUSTER_MASTERS) + CLUSTER_MASTERS - 1)
    os.environ.update({"INDEXFLOW_STATE_DIR": tempfile.mkdtemp(prefix=f"indexflow-{name}-"), **ports, **settings})


@contextmanager
def own_pipeline(name: str, **settings: str) -> Iterator[tuple[Any, Any]]:
    """``own_environment``, its servers up, topics applied and every service running: yields the
    settings and the stack; everything stopped at the end."""
    own_environment(name, **settings)
    from deploy.stack import Stack
    from services.cli.pipeline import start_services, stop_services
    from services.runtime.kafka import admin_client
    from services.runtime.settings import Settings
    from topics import TOPICS, apply_topics

    configured = Settings()
    stack = Stack(configured)
    stack.up()
    try:
        apply_topics(admin_client(configured), TOPICS, configured)
        start_services(configured, timeout=180)
        try:
            yield configured, stack
        finally:
            stop_services(configured)
    finally:
        stack.down()
