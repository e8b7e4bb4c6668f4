"""The kinds of source, by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from services.sources.folder import FolderSource
from services.sources.kinds import SourceKind
from services.sources.notion import NotionSource
from services.sources.s3 import S3Source
from services.sources.settings import SourcesSettings
from services.sources.web import WebSource

KINDS: dict[str, Callable[[Any, SourcesSettings, httpx.Client], SourceKind]] = {
    "folder": lambda config, s, _http: FolderSource(config, s.folder_roots, s.max_item_bytes),
    "web": lambda config, s, http: WebSource(config, http, s.user_agent, s.max_item_bytes, s.web_concurrency,
                                             s.max_crawl_delay_seconds),
    "s3": lambda config, s, _http: S3Source(config, s.max_item_bytes, s.http_timeout_seconds),
    "notion": lambda config, _s, http: NotionSource(config, http),
}


def open_kind(kind: str, config: Any, settings: SourcesSettings, http: httpx.Client) -> SourceKind:
    """The source of ``kind`` over ``config`` (its KindConfig, credentials included); ``http``: the
    process's client for the kinds that speak HTTP."""
    return KINDS[kind](config, settings, http)
