"""Settings shared by every process, read from ``INDEXFLOW_*`` environment variables.

Defaults point at the embedded stack on loopback, so nothing needs configuring locally.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    # Recomputable cache (embedding vectors): may evict. Keep it apart from the state Redis.
    cache_redis_url: str | None = None
    gateway_url: str | None = None

    # Namespace of every topic, consumer group, Elasticsearch index and Redis key of a deployment.
    topic_prefix: str = "indexflow."
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)

    # A small session timeout keeps group joins and failover quick on the embedded broker,
    # whose first join waits about half of it.
    session_timeout_ms: int = 6000
    max_poll_interval_ms: int = 300_000

    @model_validator(mode="after")
    def _default_urls_to_embedded_stack(self) -> Settings:
        self.kafka_bootstrap_servers = self.kafka_bootstrap_servers or f"{self.host}:{self.kafka_port}"
        self.elasticsearch_url = self.elasticsearch_url or f"http://{self.host}:{self.elasticsearch_port}"
        self.redis_url = self.redis_url or f"redis://{self.host}:{self.redis_port}/0"
        self.cache_redis_url = self.cache_redis_url or f"redis://{self.host}:{self.cache_redis_port}/0"
        self.gateway_url = self.gateway_url or f"http://{self.host}:{self.gateway_port}"
        return self

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    @property
    def keys(self) -> RedisKeys:
        return RedisKeys(self.topic_prefix)
