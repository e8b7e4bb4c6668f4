"""Runs every pipeline service as its own process and restarts any that dies.

``python -m deploy.supervisor`` is what ``indexflow up`` starts in the background. SIGTERM stops the
services gracefully (each finishes and commits its batch in hand), then the supervisor.

A consumer stage runs as many replicas as ``indexflow scale`` asked for (``run/replicas.json``, read
again every second): the first is named after the stage, the others ``stage-2``, ``stage-3``... Each
is its own member of the stage's consumer groups under that name (static membership), so a replica
the supervisor restarts gets its partitions back without a rebalance."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from services.runtime.logs import configure_logging
from services.runtime.settings import Settings

SERVICES = ("extractor", "splitter", "embedder", "indexer", "projector", "watchdog", "sources", "gateway")
# The stages that scale out through their consumer groups (the gateway holds one port, the
# watchdog's sweeps are global).
SCALABLE = ("extractor", "splitter", "embedder", "indexer", "projector")
STOP_TIMEOUT = 30.0
MAX_BACKOFF = 30.0
# A child that ran this long before exiting was healthy: its next restart is immediate again.
STABLE_SECONDS = 60.0

log = logging.getLogger("supervisor")


@dataclass
class Child:
    name: str  # the stage's name for its first replica, "stage-N" for the others
    service: str = ""  # the stage it runs (its name, unless a replica)
    process: subprocess.Popen | None = None
    restarts: int = 0
    failures: int = 0  # exits in a row, each within STABLE_SECONDS of its start
    last_exit: int | None = None
    restart_at: float = 0.0
    started_at: float = field(default_factory=time.monotonic)
    metrics_port: int | None = None  # where it serves /metrics (the gateway: on its own HTTP port)

    def __post_init__(self) -> None:
        self.service = self.service or self.name


def status_file(state_dir: Path) -> Path:
    return state_dir.resolve() / "run" / "services.json"


def read_status(state_dir: Path) -> dict[str, dict]:
    try:
        return json.loads(status_file(state_dir).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def replicas_file(state_dir: Path) -> Path:
    return state_dir.resolve() / "run" / "replicas.json"


def read_replicas(state_dir: Path) -> dict[str, int]:
    """How many replicas of each scalable stage to run (1 unless scaled)."""
    try:
        asked = json.loads(replicas_file(state_dir).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        asked = {}
    return {stage: max(1, int(asked.get(stage, 1))) for stage in SCALABLE}


def write_replicas(state_dir: Path, stage: str, count: int) -> None:
    if stage not in SCALABLE:
        raise ValueError(f"{stage} does not scale; the stages that do: {', '.join(SCALABLE)}")
    if count < 1:
        raise ValueError("at least one replica")
    path = replicas_file(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    replicas = read_replicas(state_dir) | {stage: count}
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(replicas))
    partial.replace(path)


def replica_name(service: str, index: int) -> str:
    return service if index == 1 else f"{service}-{index}"


def metrics_ports(settings: Settings, services: tuple[str, ...]) -> dict[str, int | None]:
    """Each service on one host needs a port of its own: consecutive ones from the setting's. The
    gateway serves /metrics on its HTTP port; 0 turns metrics off."""
    others = [name for name in services if name != "gateway"]
    ports: dict[str, int | None] = {
        name: settings.metrics_port + i if settings.metrics_port else None for i, name in enumerate(others)
    }
    return ports | ({"gateway": settings.gateway_port} if "gateway" in services else {})


def schedule_restart(child: Child, code: int, now: float) -> float:
    """Record the exit and set when to start the child again: back off exponentially while it
    keeps failing quickly, from the start again once it had been up for STABLE_SECONDS."""
    child.restarts += 1
    child.last_exit = code
    child.process = None
    child.failures = 1 if now - child.started_at >= STABLE_SECONDS else child.failures + 1
    delay = min(2 ** (child.failures - 1), MAX_BACKOFF)
    child.restart_at = now + delay
    return delay


class Supervisor:
    def __init__(self, settings: Settings, services: tuple[str, ...] = SERVICES):
        self.state_dir = settings.state_dir.resolve()
        self.services = services
        ports = metrics_ports(settings, services)
        self.children = {name: Child(name, name, metrics_port=ports[name]) for name in services}
        self._retiring: list[Child] = []  # replicas scaled away, stopping gracefully
        self._replicas_read = 0.0
        self._stopping = False

    def _spawn(self, child: Child) -> None:
        log_path = self.state_dir / "logs" / f"{child.name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "INDEXFLOW_METRICS_PORT": str(child.metrics_port or 0),
               "INDEXFLOW_INSTANCE_ID": child.name}
        with open(log_path, "ab") as out:
            child.process = subprocess.Popen(
                [sys.executable, "-m", f"services.{child.service}"], stdin=subprocess.DEVNULL, stdout=out,
                stderr=out, env=env,
            )
        child.started_at = time.monotonic()
        log.info("started %s (pid %d)", child.name, child.process.pid)

    def _write_status(self) -> None:
        status = {
            c.name: {
                "pid": c.process.pid if c.process and c.process.poll() is None else None,
                "restarts": c.restarts,
                "last_exit": c.last_exit,
                "up_seconds": round(time.monotonic() - c.started_at, 1) if c.process else None,
                "metrics_port": c.metrics_port,
            }
            for c in self.children.values()
        }
        path = status_file(self.state_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(status, indent=1))
        partial.replace(path)

    def stop(self, *_: object) -> None:
        self._stopping = True

    def scale(self) -> bool:
        """Start and stop replicas to match ``replicas.json``; whether anything changed. A replica
        scaled away is stopped gracefully (it finishes and commits its batch in hand)."""
        changed = False
        for service, count in read_replicas(self.state_dir).items():
            if service not in self.services:
                continue
            wanted = {replica_name(service, i) for i in range(2, count + 1)}
            for name in sorted(wanted - set(self.children)):
                self.children[name] = Child(name, service)  # replicas serve no metrics: one port each
                self._spawn(self.children[name])
                changed = True
            for name in [n for n, c in self.children.items() if c.service == service and n != service]:
                if name not in wanted:
                    child = self.children.pop(name)
                    if child.process is not None and child.process.poll() is None:
                        child.process.send_signal(signal.SIGTERM)
                        self._retiring.append(child)
                    log.info("scaled %s down: stopping %s", service, name)
                    changed = True
        self._retiring = [c for c in self._retiring if c.process is not None and c.process.poll() is None]
        return changed

    def run(self) -> None:
        for child in self.children.values():
            self._spawn(child)
        self.scale()
        self._write_status()
        while not self._stopping:
            changed = False
            if time.monotonic() - self._replicas_read >= 1.0:
                self._replicas_read = time.monotonic()
                changed = self.scale()
            for child in self.children.values():
                if child.process is not None and (code := child.process.poll()) is not None:
                    delay = schedule_restart(child, code, time.monotonic())
                    log.warning("%s exited with %s; restart %d in %.0fs", child.name, code, child.restarts, delay)
                    changed = True
                if child.process is None and time.monotonic() >= child.restart_at:
                    self._spawn(child)
                    changed = True
            if changed:
                self._write_status()
            time.sleep(0.2)
        self._shutdown()

    def _shutdown(self) -> None:
        running = [c.process for c in [*self.children.values(), *self._retiring]
                   if c.process and c.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in running:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for child in self.children.values():
            child.process = None
        self._write_status()


def main() -> None:
    settings = Settings()
    configure_logging(settings, "supervisor")
    supervisor = Supervisor(settings)
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    supervisor.run()


if __name__ == "__main__":
    main()
