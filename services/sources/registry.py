"""The kinds of source, by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.sources.folder import FolderSource
from services.sources.kinds import SourceKind
from services.sources.settings import SourcesSettings

KINDS: dict[str, Callable[[Any, SourcesSettings], SourceKind]] = {
    "folder": lambda config, s: FolderSource(config, s.folder_roots, s.max_item_bytes),
}


def open_kind(kind: str, config: Any, settings: SourcesSettings) -> SourceKind:
    """The source of ``kind`` over ``config`` (its KindConfig, credentials included)."""
    return KINDS[kind](config, settings)
