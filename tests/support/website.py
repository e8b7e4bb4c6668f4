"""A website a test serves itself on loopback: pages it can edit, add and remove while served,
each with an ETag or a Last-Modified date (conditional requests answered 304), and a log of every
request with the status answered, when it came and how many were in flight at most."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Page:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None


class Website:
    def __init__(self) -> None:
        self.pages: dict[str, Page] = {}
        self.requests: list[tuple[str, int]] = []  # (path, status)
        self.arrivals: list[tuple[str, float]] = []  # (path, time.monotonic() when it came)
        self.latency = 0.0  # seconds each answer waits, so concurrent requests overlap
        self.most_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._revision = 0
        self.url = ""

    def put(self, path: str, body: str, validator: str = "etag", content_type: str = "text/html; charset=utf-8"):
        """Serve ``body`` at ``path`` with a new ETag, or (``validator="modified"``) a new
        Last-Modified date, or ``"none"``: neither."""
        self._revision += 1
        page = Page(body.encode(), content_type)
        if validator == "etag":
            page.etag = f'"v{self._revision}"'
        elif validator == "modified":
            page.last_modified = formatdate(1_700_000_000 + self._revision, usegmt=True)
        self.pages[path] = page

    def html(self, path: str, title: str, text: str, links: tuple[str, ...] = (), validator: str = "etag"):
        anchors = "".join(f'<a href="{link}">{link}</a> ' for link in links)
        self.put(path, f"<html><head><title>{title}</title></head><body><p>{text}</p>{anchors}</body></html>",
                 validator)

    def sitemap(self, *paths: str, lastmods: Mapping[str, str] | None = None) -> None:
        """A sitemap of ``paths``, with a ``<lastmod>`` for those ``lastmods`` dates."""
        lastmods = lastmods or {}
        urls = "".join(f"<url><loc>{self.url}{p}</loc>"
                       + (f"<lastmod>{lastmods[p]}</lastmod>" if p in lastmods else "") + "</url>" for p in paths)
        self.put("/sitemap.xml", '<?xml version="1.0" encoding="UTF-8"?><urlset xmlns='
                 f'"http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>', "none", "application/xml")

    def statuses(self, path: str) -> list[int]:
        return [status for p, status in self.requests if p == path]

    def answer(self, path: str, headers) -> tuple[int, Page | None]:
        page = self.pages.get(path)
        if page is None:
            return 404, None
        if (page.etag and headers.get("If-None-Match") == page.etag) or (
                page.last_modified and headers.get("If-Modified-Since") == page.last_modified):
            return 304, page
        return 200, page


@contextmanager
def serve(site: Website) -> Iterator[Website]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            with site._lock:
                site.arrivals.append((self.path, time.monotonic()))
                site._in_flight += 1
                site.most_in_flight = max(site.most_in_flight, site._in_flight)
            try:
                self._answer()
            finally:
                with site._lock:
                    site._in_flight -= 1

        def _answer(self) -> None:
            time.sleep(site.latency)
            status, page = site.answer(self.path, self.headers)
            site.requests.append((self.path, status))
            self.send_response(status)
            if page is not None:
                if page.etag:
                    self.send_header("ETag", page.etag)
                if page.last_modified:
                    self.send_header("Last-Modified", page.last_modified)
            body = page.body if page is not None and status == 200 else b""
            if status != 304:
                self.send_header("Content-Type", page.content_type if page else "text/plain")
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
