"""A website, crawled from its start URL within the same site (scheme, host and port): breadth
first, up to ``max_depth`` links away and ``max_pages`` pages, ``include``/``exclude`` patterns on
URLs, robots.txt's rules for our agent, and the pages of its sitemaps. Up to ``concurrency``
requests are in flight at once, their answers taken in the order asked so the crawl finds the same
pages as one request at a time would; a robots.txt ``Crawl-delay`` makes the page requests
sequential, spaced by it. Each request is conditional on what the last sync kept (If-None-Match,
If-Modified-Since), so an unchanged page costs one 304; a page whose sitemap ``<lastmod>`` is the
one it had when last read costs nothing. Either way its links, kept from when it was read, are
followed as before. Pages go out as they came (HTML, or whatever file a link led to) for the
extractor to read like an upload."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from urllib.parse import urldefrag, urlsplit
from urllib.robotparser import RobotFileParser
from xml.etree.ElementTree import ParseError

import httpx

from services.sources.definitions import WebConfig
from services.sources.kinds import Content, ItemUnavailable, Known, Listed, SourceUnavailable
from services.sources.pages import read_page, read_sitemap

_HTML = ("text/html", "application/xhtml+xml")
_SITEMAPS_READ = 20  # sitemaps of a sitemap index read at most


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class _Pacing:
    """Each request starts ``delay`` seconds after the one before (none: no waiting)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.delay:
            return
        with self._lock:
            now = time.monotonic()
            if self._next > now:
                time.sleep(self._next - now)
            self._next = max(now, self._next) + self.delay


class WebSource:
    def __init__(self, config: WebConfig, http: httpx.Client, user_agent: str, max_bytes: int, concurrency: int,
                 max_crawl_delay: float):
        """``concurrency``: requests in flight when the source's config names none;
        ``max_crawl_delay``: the longest Crawl-delay obeyed (a longer one is cut to it)."""
        self.config = config
        self.http = http
        self.user_agent = user_agent
        self.max_bytes = max_bytes
        self.concurrency = config.concurrency or concurrency
        self.max_crawl_delay = max_crawl_delay
        self.start = urldefrag(config.url)[0]
        self.origin = _origin(self.start)
        self.include = [re.compile(p) for p in config.include]
        self.exclude = [re.compile(p) for p in config.exclude]

    def listing(self, known: Mapping[str, Known]) -> Iterator[Listed]:
        robots = self._robots()
        delay = min(float(robots.crawl_delay(self.user_agent) or 0), self.max_crawl_delay)
        pacing = _Pacing(delay)
        lastmods = self._sitemap_pages(robots) if self.config.sitemap else {}
        queue: deque[tuple[str, int]] = deque([(self.start, 0)])
        queue += ((url, 1) for url in lastmods if url != self.start)
        queued = {url for url, _ in queue}
        workers = 1 if delay else self.concurrency
        # Answers are taken oldest first: the queue grows as it would one request at a time.
        in_flight: deque[tuple[int, Future]] = deque()
        asked = 0
        with ThreadPoolExecutor(workers, thread_name_prefix="crawl") as pool:
            while queue or in_flight:
                while queue and len(in_flight) < workers and asked < self.config.max_pages:
                    url, depth = queue.popleft()
                    if self._wanted(url, robots):
                        in_flight.append((depth, pool.submit(self._visit, url, known.get(url), lastmods.get(url),
                                                             pacing)))
                        asked += 1
                if not in_flight:
                    break
                depth, visit = in_flight.popleft()
                item, links = visit.result()
                if item is not None:
                    yield item
                if depth < self.config.max_depth:
                    for link in links:
                        if link not in queued:
                            queued.add(link)
                            queue.append((link, depth + 1))

    def fetch(self, item: Listed) -> Content:
        """The page read again, unconditionally (a crawl lists every page it read with its content)."""
        try:
            page, _ = self._visit(item.url, None, None, _Pacing(0))
        except SourceUnavailable as exc:
            raise ItemUnavailable(str(exc)) from None
        if page is None or page.content is None:
            raise ItemUnavailable(page.problem if page is not None and page.problem else "not there any more")
        return page.content

    def _wanted(self, url: str, robots: RobotFileParser) -> bool:
        if _origin(url) != self.origin:
            return False
        if any(p.search(url) for p in self.exclude):
            return False
        if self.include and url != self.start and not any(p.search(url) for p in self.include):
            return False
        return robots.can_fetch(self.user_agent, url)

    def _visit(self, url: str, known: Known | None, lastmod: str | None,
               pacing: _Pacing) -> tuple[Listed | None, list[str]]:
        """The page as an item, and its links; None for a page that is not there (404, 410).
        ``lastmod``: the page's date in the sitemap, if it gives one."""
        memo = known.memo if known is not None else {}
        if known is not None and known.fingerprint and lastmod is not None and memo.get("lastmod") == lastmod:
            return self._as_kept(url, known, memo), memo.get("links", [])
        headers = {}
        if memo.get("etag"):
            headers["If-None-Match"] = memo["etag"]
        if memo.get("last_modified"):
            headers["If-Modified-Since"] = memo["last_modified"]
        pacing.wait()
        try:
            with self.http.stream("GET", url, headers=headers) as response:
                if response.status_code == 304 and known is not None:
                    kept = {k: v for k, v in memo.items() if k != "lastmod"}
                    return self._as_kept(url, known, {**kept, "lastmod": lastmod} if lastmod else kept), \
                        memo.get("links", [])
                if response.status_code in (404, 410):
                    return None, []
                if response.status_code >= 400:
                    return self._failed(url, known, f"HTTP {response.status_code}"), memo.get("links", [])
                if _origin(str(response.url)) != self.origin:
                    return None, []  # redirected off the site
                body = self._read(response)
        except httpx.HTTPError as exc:
            raise SourceUnavailable(f"{url}: {exc}") from exc
        if body is None:
            return self._failed(url, known, f"over the {self.max_bytes:,} byte item limit"), []
        mime = response.headers.get("content-type", "").split(";")[0].strip().lower() or None
        title, links = "", []
        if mime in _HTML:
            title, links = read_page(str(response.url), body.decode(response.encoding or "utf-8", "replace"))
        etag, modified = response.headers.get("etag"), response.headers.get("last-modified")
        fingerprint = (f"etag:{etag}" if etag else f"modified:{modified}" if modified
                       else "sha256:" + hashlib.sha256(body).hexdigest())
        name = (title or urlsplit(url).path.rsplit("/", 1)[-1] or url)[:512]
        memo = {"etag": etag, "last_modified": modified, "title": name, "links": links}
        if lastmod:
            memo["lastmod"] = lastmod
        return Listed(url, url, name, fingerprint, memo, Content(name=name, data=body, mime_type=mime)), links

    @staticmethod
    def _as_kept(url: str, known: Known, memo: dict) -> Listed:
        """An unchanged page, as the last sync read it."""
        return Listed(url, url, memo.get("title") or url, known.fingerprint, memo)

    def _failed(self, url: str, known: Known | None, problem: str) -> Listed:
        """A page that is there but could not be read this time: left as the last sync had it."""
        return Listed(url, url, url, known.fingerprint if known else "", known.memo if known else {},
                      problem=problem)

    def _read(self, response: httpx.Response) -> bytes | None:
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > self.max_bytes:
                return None
        return bytes(body)

    def _robots(self) -> RobotFileParser:
        """The site's rules; none when it has no robots.txt. A site that fails to answer for it is
        not crawled (a 5xx may hide a ban, as Google treats it)."""
        robots = RobotFileParser(f"{self.origin}/robots.txt")
        try:
            response = self.http.get(robots.url)
        except httpx.HTTPError as exc:
            raise SourceUnavailable(f"{robots.url}: {exc}") from exc
        if response.status_code >= 500:
            raise SourceUnavailable(f"{robots.url}: HTTP {response.status_code}")
        robots.parse(response.text.splitlines() if response.status_code == 200 else [])
        return robots

    def _sitemap_pages(self, robots: RobotFileParser) -> dict[str, str | None]:
        """The pages of the site's sitemaps, in their order, each with its ``<lastmod>`` if given."""
        sitemaps = deque(robots.site_maps() or [f"{self.origin}/sitemap.xml"])
        pages: dict[str, str | None] = {}
        read = 0
        while sitemaps and read < _SITEMAPS_READ:
            url = sitemaps.popleft()
            if _origin(url) != self.origin:
                continue
            read += 1
            try:
                response = self.http.get(url)
            except httpx.HTTPError as exc:
                raise SourceUnavailable(f"{url}: {exc}") from exc
            if response.status_code in (404, 410):
                continue
            if response.status_code >= 400:
                raise SourceUnavailable(f"{url}: HTTP {response.status_code}")
            try:
                found, nested = read_sitemap(response.content)
            except ParseError as exc:
                raise SourceUnavailable(f"{url}: not a sitemap ({exc})") from None
            for page, lastmod in found.items():
                pages.setdefault(urldefrag(page)[0], lastmod)
            sitemaps += nested
        return pages
