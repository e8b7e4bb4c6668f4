"""The sources service's settings (``INDEXFLOW_SOURCES_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SourcesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INDEXFLOW_SOURCES_", extra="ignore")

    # The directories a folder source may read (JSON list). None by default: a server reading any
    # path a caller names would hand out every file it can read.
    folder_roots: list[Path] = Field(default_factory=list)
    # Whether sources may reach loopback, private and link-local addresses (a site on the intranet,
    # a MinIO beside the deployment). Unset: only where the gateway is open (INDEXFLOW_AUTH=open, a
    # laptop); with API keys, a tenant's source must not read the deployment's own servers.
    private_networks: bool | None = None
    # How often the service looks for syncs due or asked for.
    poll_seconds: float = Field(default=1.0, gt=0)
    # A sync holds its source for this long and renews it as it goes: a replica that dies (SIGKILL,
    # a lost node) gives the run up to another, which resumes it, once this has passed.
    lease_seconds: float = Field(default=15.0, ge=2)
    # Runs kept per source (its history), and errors kept per run.
    runs_kept: int = Field(default=20, ge=1)
    errors_kept: int = Field(default=50, ge=1)
    # The shortest schedule a source may have.
    min_every_seconds: int = Field(default=60, ge=1)
    # One item's bytes at most (larger ones are errors of the run, named); the gateway's upload
    # limit applies as well.
    max_item_bytes: int = Field(default=200 * 2**20, ge=1)
    # One HTTP request's time limit (web, S3, Notion), and the agent named to websites and robots.txt.
    http_timeout_seconds: float = Field(default=30.0, gt=0)
    user_agent: str = "indexflow-sources/1"
    # A web crawl's requests in flight at once to its site, unless the source's config names its own
    # (a site's latency, not its bandwidth, bounds a crawl); a robots.txt Crawl-delay overrides it.
    web_concurrency: int = Field(default=8, ge=1, le=16)
    # The longest Crawl-delay obeyed; a longer one is cut to it. A sync renews its lease between
    # items, so a wait must stay well inside lease_seconds.
    max_crawl_delay_seconds: float = Field(default=5.0, ge=0)

    def allows_private_networks(self, auth: str | None) -> bool:
        return self.private_networks if self.private_networks is not None else auth == "open"
