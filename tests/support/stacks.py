"""An embedded stack of a test's own (its ports, its state dir), for tests that kill, freeze or
restart its servers, which the session's stack must never see."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from deploy.stack import Stack
from services.runtime.kafka import admin_client
from services.runtime.settings import Settings
from tests.conftest import stack_env
from topics import TOPICS, apply_topics


@contextmanager
def own_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, servers: tuple[str, ...] | None = None,
              **env: str) -> Iterator[Stack]:
    """The stack's ``servers`` (all by default) up with the pipeline's topics, the broker in memory,
    ``env`` (INDEXFLOW_* settings) on top; stopped at the end."""
    for name, value in {**stack_env(tmp_path / "state"), "INDEXFLOW_KAFKA_STORAGE": "memory", **env}.items():
        monkeypatch.setenv(name, value)
    stack = Stack(Settings())
    if servers is not None:
        stack.components = [c for c in stack.components if c.name in servers]
    stack.up()
    try:
        assert apply_topics(admin_client(stack.settings), TOPICS, stack.settings).ok
        yield stack
    finally:
        stack.down()
