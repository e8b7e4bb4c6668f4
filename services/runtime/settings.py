"""Settings shared by every process, read from ``INDEXFLOW_*`` environment variables.

Defaults point at the embedded stack on loopback, so nothing needs configuring locally.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, FilePath, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas import Priority
from services.runtime.keys import RedisKeys


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INDEXFLOW_", extra="ignore")

    # Where the embedded stack keeps data, logs and pid files.
    state_dir: Path = Path(".indexflow")
    host: str = "127.0.0.1"
    kafka_port: int = 19092
    elasticsearch_port: int = 19200
    redis_port: int = 16379
    cache_redis_port: int = 16380
    bucket_port: int = 19000
    gateway_port: int = 18080
    # "memory" loses topics when the broker stops; "s3" keeps them in the local S3 bucket server.
    kafka_storage: str = Field(default="memory", pattern="^(memory|s3)$")

    # Explicit URLs for production clusters; unset means the embedded stack's ports.
    kafka_bootstrap_servers: str | None = None
    elasticsearch_url: str | None = None
    # Correctness state (revisions, registry, progress, states): persistent, never evicting.
    redis_url: str | None = None
    # The state Redis is a Redis Cluster (``redis_url`` names any of its nodes): each tenant's keys
    # share a hash slot of their own (services/runtime/keys.py), so tenants spread over its masters.
    redis_cluster: bool = False
    # Recomputable cache (embedding vectors): may evict. Keep it apart from the state Redis.
    cache_redis_url: str | None = None
    gateway_url: str | None = None

    # Connections to secured clusters. Secrets are SecretStr so they never reach a log line.
    # Redis: password and TLS go in the URLs (``rediss://:password@host:6380/0``).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: FilePath | None = None
    kafka_ssl_certificate_location: FilePath | None = None  # client certificate (mutual TLS)
    kafka_ssl_key_location: FilePath | None = None
    elasticsearch_api_key: SecretStr | None = None
    elasticsearch_username: str | None = None
    elasticsearch_password: SecretStr | None = None
    elasticsearch_ca_certs: FilePath | None = None
    redis_ca_certs: FilePath | None = None

    # Who may call the gateway. "api_keys": a Bearer key bound to one tenant. "open": any caller is
    # whichever tenant its X-Tenant-Id names, for a laptop only. Unset: open on the embedded
    # stack, api_keys as soon as Kafka is a real cluster.
    auth: Literal["api_keys", "open"] | None = None

    # Namespace of every topic, consumer group, Elasticsearch index and Redis key of a deployment.
    topic_prefix: str = "indexflow."
    partitions: int = Field(default=6, ge=1)
    # Production clusters: 3 and 2, so that acks=all survives one broker down. Unset
    # min.insync.replicas leaves the cluster's default, which `topics apply` checks for sanity.
    replication_factor: int = Field(default=1, ge=1)
    min_insync_replicas: int | None = Field(default=None, ge=1)

    # Unset: 6 s on the embedded broker (its first join waits about half the session timeout, so
    # a small one keeps joins and failover quick), 45 s (Kafka's default) on a real cluster, where
    # a small timeout evicts consumers on every GC pause or network blip.
    session_timeout_ms: int | None = None
    max_poll_interval_ms: int = 300_000
    # This replica's stable name (the supervisor names its children, Kubernetes gives the pod's
    # name), and with static membership its name in its consumer groups. Unset static membership:
    # on, except against the embedded broker, which was seen leaving a departed static member's
    # partitions unassigned for good (docs/delivery.md, Scaling and rebalances).
    instance_id: str | None = None
    kafka_static_membership: bool | None = None
    # How a group's partitions are shared. Unset: cooperative-sticky (incremental rebalances), except
    # against the embedded broker, which keeps the eager range its chaos run has long passed with
    # (docs/delivery.md, Scaling and rebalances).
    kafka_assignment_strategy: Literal["cooperative-sticky", "range", "roundrobin"] | None = None
    # Idempotent producers (no duplicate or reordered record on a retry). Unset: on, except against
    # the embedded broker in memory, which forgets producer ids when it restarts and hands the same
    # ids out again, so producers of different processes fence each other ("a newer producer")
    # until every client is rebuilt; there records go one request at a time instead (no reordering;
    # a retry may duplicate one, which every stage absorbs).
    kafka_idempotence: bool | None = None
    # How long a write waits for Kafka's acknowledgement before it is an outage (a 503, a batch redone).
    kafka_ack_timeout_seconds: float = Field(default=30.0, gt=0)
    # A producer that lost its broker and, once the cluster answers again, still has a record
    # unacknowledged after this long is stuck (services/runtime/producer.py) and is rebuilt.
    kafka_ack_stall_seconds: float = Field(default=3.0, gt=0)
    # The largest record value a service sends; below Kafka's default 1 MB message.max.bytes
    # (broker and topic), with room for key, headers and batch framing.
    max_record_bytes: int = Field(default=900_000, ge=16_384)
    # The refreshes that make completed documents searchable (services/indexer/refresh.py): at
    # most one per interval, and spaced further when they take more than the budget's share of the
    # time (the embedded server scans its whole index on each).
    refresh_interval_seconds: float = Field(default=1.0, ge=0)
    refresh_budget: float = Field(default=0.1, gt=0, le=1)
    # A refresh that makes an interactive document searchable: this soon after the last one.
    refresh_urgent_interval_seconds: float = Field(default=0.25, ge=0)
    # Priority lanes: bulk records travel on "<topic>.bulk" and wait while interactive ones are
    # served. Off, every record takes the interactive topic in arrival order (for comparison).
    lanes: bool = True
    # How far each lane of a stage reads ahead of its processing, to serve the tenants in turn: a
    # tenant whose records lie further behind another's waits until the backlog ahead shrinks.
    read_ahead_bytes: int = Field(default=16 * 2**20, ge=2**20)
    read_ahead_records: int = Field(default=5000, ge=100)

    # An index per dataset (and model): BM25 scores each dataset with its own term statistics, and
    # a search or refresh touches that dataset's chunks only; for up to max_dataset_indices datasets
    # of the deployment (Elasticsearch allows 1,000 shards per node), the others share one index per
    # tenant and model (services/indexer/placement.py). Off: every dataset shares its tenant's.
    index_per_dataset: bool = True
    max_dataset_indices: int = Field(default=300, ge=0)
    # Where a consumer-loop service serves Prometheus' /metrics (0: nowhere). The embedded stack's
    # supervisor gives its services consecutive ports from this one; the gateway serves /metrics on
    # its own HTTP port. Unset host: the stack's (loopback); 0.0.0.0 in a container.
    metrics_port: int = Field(default=19100, ge=0, le=65535)
    metrics_host: str | None = None
    # One JSON object per log line (tenant, document and revision where a record is in hand), or
    # plain text for a terminal.
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Which servers are the deployment's own (their URL set), not the embedded stack's.
    _external: frozenset[str] = PrivateAttr(default=frozenset())

    @model_validator(mode="after")
    def _check_security(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"kafka_security_protocol={self.kafka_security_protocol} needs kafka_sasl_mechanism, "
                "kafka_sasl_username and kafka_sasl_password"
            )
        if bool(self.elasticsearch_username) != bool(self.elasticsearch_password):
            raise ValueError("elasticsearch_username and elasticsearch_password go together")
        if self.min_insync_replicas and self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                f"min_insync_replicas={self.min_insync_replicas} above replication_factor="
                f"{self.replication_factor}: every acknowledged write would fail"
            )
        return self

    @model_validator(mode="after")
    def _default_to_embedded_stack(self) -> Settings:
        self._external = frozenset(name for name, url in (
            ("kafka", self.kafka_bootstrap_servers), ("elasticsearch", self.elasticsearch_url),
            ("redis", self.redis_url), ("redis-cache", self.cache_redis_url),
        ) if url is not None)
        embedded = self.kafka_bootstrap_servers is None
        if self.session_timeout_ms is None:
            self.session_timeout_ms = 6000 if embedded else 45_000
        if self.auth is None:
            self.auth = "open" if embedded else "api_keys"
        if self.kafka_assignment_strategy is None:
            self.kafka_assignment_strategy = "range" if embedded else "cooperative-sticky"
        if self.kafka_static_membership is None:
            self.kafka_static_membership = not embedded
        if self.kafka_idempotence is None:
            self.kafka_idempotence = not (embedded and self.kafka_storage == "memory")
        self.kafka_bootstrap_servers = self.kafka_bootstrap_servers or f"{self.host}:{self.kafka_port}"
        self.elasticsearch_url = self.elasticsearch_url or f"http://{self.host}:{self.elasticsearch_port}"
        self.redis_url = self.redis_url or f"redis://{self.host}:{self.redis_port}/0"
        self.cache_redis_url = self.cache_redis_url or f"redis://{self.host}:{self.cache_redis_port}/0"
        self.gateway_url = self.gateway_url or f"http://{self.host}:{self.gateway_port}"
        self.metrics_host = self.metrics_host or self.host
        return self

    @property
    def external_servers(self) -> frozenset[str]:
        """The servers named by URL (kafka, elasticsearch, redis, redis-cache): ``indexflow up``
        starts none of them, it checks that they answer."""
        return self._external

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def group(self, service: str, priority: Priority = Priority.INTERACTIVE) -> str:
        """A service's consumer group (of one lane), in the deployment's namespace like its topics."""
        return f"{self.topic_prefix}{service}" + (".bulk" if priority is Priority.BULK else "")

    @property
    def dataset_index_budget(self) -> int:
        """How many datasets of the deployment may have indices of their own."""
        return self.max_dataset_indices if self.index_per_dataset else 0

    @property
    def keys(self) -> RedisKeys:
        return RedisKeys(self.topic_prefix)
