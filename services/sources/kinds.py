"""What every kind of source does: list its items, each with a fingerprint that changes when the
item does (an ETag, a modification time and size, Notion's last_edited_time), and fetch one."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class SourceUnavailable(Exception):
    """The listing could not be completed (the folder, site, bucket or API failed): what was
    listed is synced, and nothing is deleted on its account."""


class ItemUnavailable(Exception):
    """One item could not be fetched: an error of the run, the item left as it was."""


@dataclass(frozen=True)
class Content:
    """An item's content: ``data`` (a file, read by the extractor as an upload is) or ``text``."""

    name: str
    data: bytes | None = None
    text: str | None = None
    mime_type: str | None = None


@dataclass(frozen=True)
class Known:
    """What the last sync kept of an item."""

    fingerprint: str
    document_id: str
    memo: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Listed:
    item_id: str  # the item's own id at the source: a relative path, a URL, a key, a page id
    url: str  # where it lives, carried in its document's metadata
    name: str
    fingerprint: str
    memo: dict[str, Any] = field(default_factory=dict)  # kept for the next sync (a page's links)
    content: Content | None = None  # when listing it fetched it already (a crawled page)
    problem: str | None = None  # there, but unreadable this time: an error, left as it was


class SourceKind(Protocol):
    def listing(self, known: Mapping[str, Known]) -> Iterator[Listed]:
        """Every item, once; raises SourceUnavailable when the listing cannot be completed."""

    def fetch(self, item: Listed) -> Content:
        """The item's content; raises ItemUnavailable."""
