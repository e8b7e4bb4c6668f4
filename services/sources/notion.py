"""Notion pages through Notion's public API (version 2022-06-28): every page shared with the
integration (POST /v1/search), or the pages of the databases named (POST /v1/databases/{id}/query),
paged by cursor; a page's ``last_edited_time`` is its fingerprint; its text is its title and its
blocks' rich text (GET /v1/blocks/{id}/children, nested blocks included), published as text.
Archived and trashed pages are gone. A 429 is waited out for its Retry-After."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from services.sources.definitions import NotionConfig
from services.sources.kinds import Content, ItemUnavailable, Known, Listed, SourceUnavailable

NOTION_VERSION = "2022-06-28"
_PAGE_SIZE = 100
_RATE_LIMIT_RETRIES = 5
_MAX_RETRY_AFTER = 30.0
_MAX_NESTING = 8  # nested blocks read this deep
# Block types whose text is their rich_text, and how a line of each begins.
_TEXT_BLOCKS = {
    "paragraph": "", "heading_1": "# ", "heading_2": "## ", "heading_3": "### ", "bulleted_list_item": "- ",
    "numbered_list_item": "1. ", "to_do": "- ", "toggle": "", "quote": "> ", "callout": "", "code": "",
}


class NotionError(Exception):
    pass


def _plain(rich_text: list[dict[str, Any]]) -> str:
    return "".join(part.get("plain_text", "") for part in rich_text)


def page_title(page: dict[str, Any]) -> str:
    for prop in page.get("properties", {}).values():
        if prop.get("type") == "title":
            return _plain(prop.get("title", [])).strip()
    return ""


class NotionSource:
    def __init__(self, config: NotionConfig, http: httpx.Client):
        self.config = config
        self.http = http
        self.base = config.base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {config.token.get_secret_value()}",
                        "Notion-Version": NOTION_VERSION}

    def listing(self, known: Mapping[str, Known]) -> Iterator[Listed]:
        try:
            if self.config.database_ids:
                for database in self.config.database_ids:
                    yield from self._listed(self._paged("POST", f"/v1/databases/{database}/query", {}))
            else:
                yield from self._listed(self._paged(
                    "POST", "/v1/search", {"filter": {"property": "object", "value": "page"}}))
        except (httpx.HTTPError, NotionError) as exc:
            raise SourceUnavailable(f"listing Notion pages: {exc}") from None

    def fetch(self, item: Listed) -> Content:
        try:
            lines = [item.name, ""] if item.name else []
            lines += self._block_lines(item.item_id, 0)
        except (httpx.HTTPError, NotionError) as exc:
            raise ItemUnavailable(str(exc)) from None
        return Content(name=item.name or item.item_id, text="\n".join(lines))

    def _listed(self, pages: Iterator[dict[str, Any]]) -> Iterator[Listed]:
        for page in pages:
            if page.get("object") != "page" or page.get("archived") or page.get("in_trash"):
                continue
            title = page_title(page)
            yield Listed(page["id"], page.get("url") or f"notion:{page['id']}", title[:512] or page["id"],
                         f"edited:{page['last_edited_time']}")

    def _block_lines(self, block_id: str, depth: int) -> list[str]:
        lines: list[str] = []
        for block in self._paged("GET", f"/v1/blocks/{block_id}/children", None):
            kind = block.get("type")
            if kind in _TEXT_BLOCKS:
                text = _plain(block.get(kind, {}).get("rich_text", []))
                if text:
                    lines.append(("  " * depth) + _TEXT_BLOCKS[kind] + text)
            # A child page is a page of its own, listed apart.
            if block.get("has_children") and kind != "child_page" and depth < _MAX_NESTING:
                lines += self._block_lines(block["id"], depth + 1)
        return lines

    def _paged(self, method: str, path: str, body: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            if body is None:
                params = {"page_size": _PAGE_SIZE, **({"start_cursor": cursor} if cursor else {})}
                answer = self._call(method, path, params=params)
            else:
                answer = self._call(method, path, json={**body, "page_size": _PAGE_SIZE,
                                                        **({"start_cursor": cursor} if cursor else {})})
            yield from answer.get("results", [])
            cursor = answer.get("next_cursor")
            if not answer.get("has_more") or not cursor:
                return

    def _call(self, method: str, path: str, **request: Any) -> dict[str, Any]:
        for _ in range(_RATE_LIMIT_RETRIES):
            response = self.http.request(method, self.base + path, headers=self.headers, **request)
            if response.status_code != 429:
                break
            time.sleep(min(float(response.headers.get("Retry-After") or 1), _MAX_RETRY_AFTER))
        if response.status_code >= 400:
            try:
                message = response.json().get("message") or response.text
            except ValueError:
                message = response.text
            raise NotionError(f"{method} {path}: HTTP {response.status_code}: {message[:300]}")
        return response.json()
