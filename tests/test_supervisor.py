"""The supervisor restarts a service that dies, and stops them all on request."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from deploy.supervisor import Supervisor, read_status
from services.runtime.settings import Settings


def wait_for(condition, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_a_killed_service_is_restarted(stack_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("INDEXFLOW_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("INDEXFLOW_TOPIC_PREFIX", "supervised.")
    settings = Settings()
    supervisor = Supervisor(settings, services=("splitter",))
    runner = threading.Thread(target=supervisor.run)
    runner.start()
    try:
        first = wait_for(lambda: read_status(tmp_path).get("splitter", {}).get("pid"))
        os.kill(first, signal.SIGKILL)
        restarted = wait_for(lambda: (s := read_status(tmp_path)["splitter"])["restarts"] == 1 and s["pid"] and s)
        assert restarted["pid"] != first and restarted["last_exit"] == -signal.SIGKILL
    finally:
        supervisor.stop()
        runner.join(timeout=60)
    assert read_status(tmp_path)["splitter"]["pid"] is None
