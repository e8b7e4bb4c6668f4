"""A local stand-in for the part of Notion's public API a Notion source uses (version 2022-06-28):
POST /v1/search, POST /v1/databases/{id}/query, GET /v1/blocks/{id}/children, cursor-paged, with
bearer-token authentication, the Notion-Version header required, Notion's error shape and 429 on
demand. Pages are edited in place by the test; each edit moves ``last_edited_time``."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Block:
    type: str
    text: str
    children: list[Block] = field(default_factory=list)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def shaped(self) -> dict:
        return {"object": "block", "id": self.id, "type": self.type, "has_children": bool(self.children),
                self.type: {"rich_text": [{"type": "text", "plain_text": self.text, "text": {"content": self.text}}]}}


@dataclass
class Page:
    id: str
    title: str
    blocks: list[Block]
    edited: int  # minutes after the stand-in's epoch
    database: str | None = None
    in_trash: bool = False

    def shaped(self) -> dict:
        parent = {"type": "database_id", "database_id": self.database} if self.database else {
            "type": "workspace", "workspace": True}
        edited = (_EPOCH + timedelta(minutes=self.edited)).strftime("%Y-%m-%dT%H:%M:00.000Z")
        return {"object": "page", "id": self.id, "url": f"https://www.notion.so/{self.id.replace('-', '')}",
                "created_time": "2026-01-01T00:00:00.000Z", "last_edited_time": edited, "parent": parent,
                "archived": self.in_trash, "in_trash": self.in_trash,
                "properties": {"Name": {"id": "title", "type": "title",
                                        "title": [{"type": "text", "plain_text": self.title}]}}}


class NotionStandIn:
    def __init__(self, token: str, page_limit: int = 2):
        self.token = token
        self.page_limit = page_limit  # results per answer at most, so cursors are exercised
        self.pages: dict[str, Page] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self.rate_limited = 0  # answer this many next requests with 429
        self._clock = 0
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                self._serve("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._serve("POST")

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else {}
                url = urlsplit(self.path)
                stand_in.requests.append((method, url.path))
                status, payload, headers = stand_in.answer(method, url.path, parse_qs(url.query), body, self.headers)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> NotionStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def put(self, title: str, *blocks: Block, database: str | None = None, page_id: str | None = None) -> str:
        """Create or replace a page; its last_edited_time moves on."""
        self._clock += 1
        page_id = page_id or str(uuid.uuid4())
        self.pages[page_id] = Page(page_id, title, list(blocks), self._clock, database)
        return page_id

    def trash(self, page_id: str) -> None:
        self._clock += 1
        self.pages[page_id].in_trash = True
        self.pages[page_id].edited = self._clock

    @staticmethod
    def _error(status: int, code: str, message: str) -> tuple[int, dict, dict]:
        return status, {"object": "error", "status": status, "code": code, "message": message}, {}

    def answer(self, method: str, path: str, query: dict, body: dict, headers) -> tuple[int, dict, dict]:
        if headers.get("Authorization") != f"Bearer {self.token}":
            return self._error(401, "unauthorized", "API token is invalid.")
        if not headers.get("Notion-Version"):
            return self._error(400, "missing_version", "Notion-Version header failed validation.")
        if self.rate_limited > 0:
            self.rate_limited -= 1
            status, payload, _ = self._error(429, "rate_limited", "You have been rate limited.")
            return status, payload, {"Retry-After": "1"}
        parts = path.strip("/").split("/")
        if method == "POST" and parts == ["v1", "search"]:
            return self._listed([p.shaped() for p in self.pages.values()], body)
        if method == "POST" and parts[:2] == ["v1", "databases"] and len(parts) == 4 and parts[3] == "query":
            rows = [p.shaped() for p in self.pages.values() if p.database == parts[2] and not p.in_trash]
            if not any(p.database == parts[2] for p in self.pages.values()):
                return self._error(404, "object_not_found", f"Could not find database with ID: {parts[2]}.")
            return self._listed(rows, body)
        if method == "GET" and parts[:2] == ["v1", "blocks"] and len(parts) == 4 and parts[3] == "children":
            blocks = self._children(parts[2])
            if blocks is None:
                return self._error(404, "object_not_found", f"Could not find block with ID: {parts[2]}.")
            return self._listed([b.shaped() for b in blocks],
                                {k: v[0] for k, v in query.items()})
        return self._error(400, "invalid_request_url", "Invalid request URL.")

    def _children(self, block_id: str) -> list[Block] | None:
        if block_id in self.pages:
            return self.pages[block_id].blocks
        stack = [b for p in self.pages.values() for b in p.blocks]
        while stack:
            block = stack.pop()
            if block.id == block_id:
                return block.children
            stack += block.children
        return None

    def _listed(self, results: list[dict], body: dict) -> tuple[int, dict, dict]:
        start = int(body.get("start_cursor") or 0)
        size = min(int(body.get("page_size") or 100), self.page_limit)
        shown = results[start:start + size]
        more = start + size < len(results)
        return 200, {"object": "list", "results": shown, "next_cursor": str(start + size) if more else None,
                     "has_more": more, "type": "page_or_database"}, {}
