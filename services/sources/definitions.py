"""What a source is: its kind's configuration (validated per kind), its schedule, and the split of
its credentials from the rest, so that what is stored with the source and shown in answers never
holds one."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

Kind = Literal["folder", "web", "s3", "notion"]
MAX_PATTERNS = 50


class KindConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    SECRETS: ClassVar[frozenset[str]] = frozenset()  # the fields that are credentials

    def secrets(self) -> dict[str, str]:
        """The credentials, stored apart from the rest."""
        return {name: value.get_secret_value() for name in self.SECRETS
                if isinstance(value := getattr(self, name), SecretStr)}

    def addresses(self) -> list[str]:
        """The URLs the source reaches (checked against private networks)."""
        return []

    def shown(self) -> dict[str, Any]:
        """The configuration as stored and answered: each credential only as "set" (or None)."""
        dumped = self.model_dump(mode="json")
        for name in self.SECRETS:
            dumped[name] = "set" if getattr(self, name) is not None else None
        return dumped


class FolderConfig(KindConfig):
    # Absolute, and under one of the service's folder roots (INDEXFLOW_SOURCES_FOLDER_ROOTS).
    path: str = Field(min_length=1, max_length=4096)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not Path(value).is_absolute():
            raise ValueError("path must be absolute")
        return value


class WebConfig(KindConfig):
    url: str = Field(pattern=r"^https?://[^\s/]+", max_length=2048)
    # Links followed from the start page (0: the start page alone), pages fetched at most.
    max_depth: int = Field(default=2, ge=0, le=20)
    max_pages: int = Field(default=100, ge=1, le=100_000)
    # Requests in flight at once; None: the service's INDEXFLOW_SOURCES_WEB_CONCURRENCY.
    concurrency: int | None = Field(default=None, ge=1, le=16)
    # Regular expressions on a page's URL: with includes, only pages matching one (the start page
    # always); never a page matching an exclude.
    include: list[str] = Field(default_factory=list, max_length=MAX_PATTERNS)
    exclude: list[str] = Field(default_factory=list, max_length=MAX_PATTERNS)
    # The site's sitemap (robots.txt's Sitemap lines, else /sitemap.xml) adds its pages.
    sitemap: bool = True

    def addresses(self) -> list[str]:
        return [self.url]

    @field_validator("include", "exclude")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        return value


class S3Config(KindConfig):
    SECRETS: ClassVar[frozenset[str]] = frozenset({"secret_access_key"})

    bucket: str = Field(min_length=3, max_length=63)
    prefix: str = Field(default="", max_length=1024)
    # Any S3-compatible store; None: AWS.
    endpoint_url: str | None = Field(default=None, pattern=r"^https?://", max_length=2048)
    region: str = Field(default="us-east-1", max_length=64)
    access_key_id: str | None = Field(default=None, max_length=256)
    secret_access_key: SecretStr | None = None
    # Keys per listing request (S3 answers at most 1,000).
    page_size: int = Field(default=1000, ge=1, le=1000)

    def addresses(self) -> list[str]:
        return [self.endpoint_url] if self.endpoint_url else []


class NotionConfig(KindConfig):
    SECRETS: ClassVar[frozenset[str]] = frozenset({"token"})

    token: SecretStr
    # Pages of these databases; none: every page shared with the integration (Notion's search).
    database_ids: list[str] = Field(default_factory=list, max_length=100)
    base_url: str = Field(default="https://api.notion.com", pattern=r"^https?://", max_length=2048)

    def addresses(self) -> list[str]:
        return [self.base_url]


CONFIGS: dict[str, type[KindConfig]] = {"folder": FolderConfig, "web": WebConfig, "s3": S3Config,
                                        "notion": NotionConfig}


class InvalidSource(ValueError):
    """A source the API refuses, with the reason."""


def parse_config(kind: str, config: dict[str, Any]) -> KindConfig:
    try:
        return CONFIGS[kind].model_validate(config)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors())
        raise InvalidSource(f"config of a {kind} source: {reasons}") from None


class Source(BaseModel):
    """A source as stored (its credentials apart) and answered."""

    id: str
    tenant_id: str
    dataset_id: str
    kind: Kind
    name: str
    config: dict[str, Any]  # KindConfig.shown()
    every: int | None  # seconds between syncs; None: only when asked
    created_at: datetime

    @property
    def key(self) -> str:
        return f"{self.tenant_id}/{self.id}"


def new_source(tenant_id: str, dataset_id: str, kind: str, name: str, config: KindConfig,
               every: int | None) -> Source:
    return Source(id=uuid.uuid4().hex, tenant_id=tenant_id, dataset_id=dataset_id, kind=kind, name=name,
                  config=config.shown(), every=every, created_at=datetime.now(UTC))


def full_config(source: Source, secrets: dict[str, str]) -> KindConfig:
    """The source's configuration with its credentials, for the sync that uses them (InvalidSource,
    naming no value, if it no longer validates)."""
    shown = {k: v for k, v in source.config.items() if k not in CONFIGS[source.kind].SECRETS}
    return parse_config(source.kind, {**shown, **secrets})
