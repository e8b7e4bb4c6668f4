"""Readiness checks: each returns None when the server answers its own protocol, else a reason."""

from __future__ import annotations

import socket
import urllib.request

import orjson
import redis
from confluent_kafka.admin import AdminClient


def port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        # As the servers themselves do: a port left in TIME_WAIT by a stopped server is free,
        # only a listening socket is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_cluster_ports(host: str, count: int) -> int:
    """The first of ``count`` consecutive free ports whose Redis Cluster bus ports (each 10000 above)
    are free too: for a local cluster's masters (tests, benchmarks)."""
    while True:
        with socket.socket() as sock:
            sock.bind((host, 0))
            first = sock.getsockname()[1]
        if first + count - 1 + 10000 <= 65535 and all(
                port_free(host, port + bus) for port in range(first, first + count) for bus in (0, 10000)):
            return first


def kafka_ready(host: str, port: int) -> str | None:
    if not port_accepts(host, port):
        return "port closed"
    admin = AdminClient({"bootstrap.servers": f"{host}:{port}", "log_level": 0})
    try:
        admin.list_topics(timeout=2)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
        return f"metadata request failed: {exc}"
    return None


def http_ready(url: str) -> str | None:
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except OSError as exc:
        return str(exc)
    return None


def elasticsearch_ready(host: str, port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=2) as response:
            info = orjson.loads(response.read())
    except (OSError, orjson.JSONDecodeError) as exc:
        return str(exc)
    version = info.get("version", {}).get("number", "")
    return None if version.startswith("8.") else f"unexpected version answer {version!r}"


def redis_ready(host: str, port: int) -> str | None:
    try:
        redis.Redis(host=host, port=port, socket_timeout=1, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        return str(exc)
    return None
