"""The gateway's own settings (``INDEXFLOW_GATEWAY_*``): what one request may carry."""

from __future__ import annotations

from pydantic import Field
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
    # A tenant's datasets (its workspace's knowledge bases): far above a real tenant's, below what
    # would fill the deployment's state and indices for all.
    max_datasets_per_tenant: int = Field(default=1000, ge=1)
    # A live event stream checks this often that its API key is still valid, and ends once revoked.
    stream_key_check_seconds: float = Field(default=5.0, gt=0)

    def body_limit(self, content_type: str) -> int:
        if is_multipart(content_type):
            return self.max_upload_bytes + 2**20
        return self.max_json_bytes
