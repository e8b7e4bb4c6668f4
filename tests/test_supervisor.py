"""The supervisor restarts a service that dies, and stops them all on request."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from deploy.supervisor import STABLE_SECONDS, Child, Supervisor, read_status, schedule_restart
from services.runtime.settings import Settings
from tests.support.waiting import wait_for


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


def test_restart_delay_backs_off_while_failing_and_resets_once_stable():
    child = Child("indexer", started_at=0.0)
    delays = []
    now = 0.0
    for _ in range(7):  # crash-loops: each run lasts a second
        now += 1.0
        delays.append(schedule_restart(child, 1, now))
        child.started_at = child.restart_at
        now = child.restart_at
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    child.started_at = now
    assert schedule_restart(child, -9, now + STABLE_SECONDS + 1) == 1, "a healthy run resets the back-off"
    assert child.restarts == 8


def test_a_stage_scales_up_and_down_with_named_replicas(stack_settings: Settings, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch):
    from deploy.supervisor import write_replicas

    monkeypatch.setenv("INDEXFLOW_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("INDEXFLOW_TOPIC_PREFIX", "scaled.")
    supervisor = Supervisor(Settings(), services=("splitter",))
    runner = threading.Thread(target=supervisor.run)
    runner.start()
    try:
        wait_for(lambda: read_status(tmp_path).get("splitter", {}).get("pid"))
        write_replicas(tmp_path, "splitter", 3)
        status = wait_for(lambda: (s := read_status(tmp_path)) and all(
            s.get(n, {}).get("pid") for n in ("splitter", "splitter-2", "splitter-3")) and s)
        replica = status["splitter-3"]["pid"]
        environ = Path(f"/proc/{replica}/environ").read_bytes().split(b"\0")
        assert b"INDEXFLOW_INSTANCE_ID=splitter-3" in environ, "each replica is a static member of its own name"

        write_replicas(tmp_path, "splitter", 1)
        wait_for(lambda: set(read_status(tmp_path)) == {"splitter"})
        wait_for(lambda: not Path(f"/proc/{replica}").exists() or _zombie(replica), timeout=40)
    finally:
        supervisor.stop()
        runner.join(timeout=60)


def _zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
