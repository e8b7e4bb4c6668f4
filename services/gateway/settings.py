"""The gateway's own settings (``INDEXFLOW_GATEWAY_*``): what one request may carry, and what one
tenant may hold and do at once (the defaults of its limits; `indexflow tenants set-limits` sets
a tenant's own)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.gateway.body_limit import is_multipart


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INDEXFLOW_GATEWAY_", extra="ignore")

    # One uploaded file; the multipart body may be this plus 1 MiB of form fields.
    max_upload_bytes: int = Field(default=200 * 2**20, ge=1)
    # Any other body (create-by-text, retrieve, ...): JSON is parsed in memory, so it is bounded
    # well below uploads, which stream to disk.
    max_json_bytes: int = Field(default=64 * 2**20, ge=1024)

    # A segment edit answers once its revision is searchable, as Dify's do, waiting at most this long
    # (then it answers the segment as still indexing).
    edit_wait_seconds: float = Field(default=30.0, ge=0)
    # A tenant's limits. Far above what a large real tenant holds or does, well below what would
    # fill the deployment's state, indices and storage or take the gateway's workers from others.
    # Counts and sizes hold for the deployment (kept in the state Redis); rates and concurrency
    # per gateway replica (counted in its memory: exact, gone with a crashed replica, no Redis
    # round trip on every request).
    max_datasets_per_tenant: int = Field(default=1000, ge=1)
    max_documents_per_tenant: int = Field(default=1_000_000, ge=1)
    max_bytes_per_tenant: int = Field(default=50 * 2**30, ge=1)  # text and uploads as written
    max_tags_per_tenant: int = Field(default=1000, ge=1)  # knowledge tags (each may be bound to every dataset)
    max_requests_per_second_per_tenant: float = Field(default=100.0, gt=0)  # bursts of twice this
    max_streams_per_tenant: int = Field(default=10, ge=1)  # live event streams open at once
    max_estimates_per_tenant: int = Field(default=4, ge=1)  # queued or running at once
    # Requests of one tenant being answered at once (live event streams aside): a fair share of
    # the gateway's 40 worker threads, checked before a request's work starts.
    max_requests_in_flight_per_tenant: int = Field(default=10, ge=1)
    # Searches of one tenant being answered at once, within its requests in flight: a search is
    # CPU-bound (a filter's values parsed, every document's metadata checked), each tens of
    # milliseconds: two at once answer a tenant's 40 or so a second per replica.
    max_searches_per_tenant: int = Field(default=2, ge=1)
    # Searches run in search_workers processes of their own, handed to the tenants with searches
    # waiting in turn, at search_niceness: the gateway's other requests get the CPU first, and one
    # tenant's searches never hold the GIL the gateway's requests share.
    search_workers: int = Field(default=2, ge=1)
    search_niceness: int = Field(default=5, ge=0, le=19)
    # Documents whose names a replica holds for listings by keyword (about 300 bytes each), the
    # datasets read least recently dropped first; a larger dataset's listing reads its states.
    keyword_listing_documents: int = Field(default=500_000, ge=0)
    # A tenant's own limits, as the operator set them, are read again after this long.
    limits_cache_seconds: float = Field(default=5.0, ge=0)

    # Estimates run one at a time per worker, each with a sandbox of its own, taking the tenants
    # with estimates waiting in turn; at most estimate_queue wait, and one waiting or running
    # longer than estimate_seconds is abandoned. Their parsers and OCR run at estimate_niceness:
    # estimates take the CPU the gateway's requests leave (a scanned page's OCR keeps a core busy
    # for seconds).
    estimate_workers: int = Field(default=1, ge=1)
    estimate_queue: int = Field(default=64, ge=1)
    estimate_seconds: float = Field(default=60.0, gt=0)
    estimate_niceness: int = Field(default=10, ge=0, le=19)
    # Download links of documents' originals (Dify's signed URLs): valid this long, signed with
    # this key. Unset: a random key the deployment's gateways share through the state Redis.
    download_link_seconds: int = Field(default=300, ge=1, le=7 * 24 * 3600)
    download_signing_key: SecretStr | None = None
    # The originals one zip may carry (Dify's download-zip takes up to 100 documents), built on disk.
    max_zip_bytes: int = Field(default=2**30, ge=1)
    # A live event stream checks this often that its API key is still valid, and ends once revoked.
    stream_key_check_seconds: float = Field(default=5.0, gt=0)
    # The dashboard's charts: the pipeline is sampled this often and the last hour of samples kept
    # (in each gateway replica's memory; see pipeline_history.py).
    dashboard_sample_seconds: float = Field(default=10.0, ge=1.0, le=300.0)

    def body_limit(self, content_type: str) -> int:
        if is_multipart(content_type):
            return self.max_upload_bytes + 2**20
        return self.max_json_bytes
