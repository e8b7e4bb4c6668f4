"""Start and stop the pipeline services (through the supervisor) next to the embedded stack."""

from __future__ import annotations

import sys
import time

import httpx

from deploy.process import ManagedProcess
from deploy.supervisor import STOP_TIMEOUT, read_status
from services.runtime.settings import Settings


def _supervisor(settings: Settings) -> ManagedProcess:
    state = settings.state_dir.resolve()
    return ManagedProcess("services", state / "run", state / "logs")


def start_services(settings: Settings, timeout: float = 60.0) -> None:
    """Start the supervisor unless it runs; wait until the gateway answers."""
    supervisor = _supervisor(settings)
    if supervisor.pid() is None:
        supervisor.start([sys.executable, "-m", "deploy.supervisor"])
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{settings.gateway_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if supervisor.pid() is None:
            raise RuntimeError(f"the service supervisor exited; see {supervisor.log_tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the gateway did not answer on {settings.gateway_url} within {timeout:.0f}s; "
                f"see {settings.state_dir.resolve() / 'logs' / 'gateway.log'}"
            )
        time.sleep(0.3)


def stop_services(settings: Settings) -> bool:
    return _supervisor(settings).stop(timeout=STOP_TIMEOUT + 5)


def services_status(settings: Settings) -> dict[str, dict]:
    running = _supervisor(settings).pid() is not None
    return read_status(settings.state_dir) if running else {}
