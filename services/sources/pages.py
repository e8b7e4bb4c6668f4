"""What a crawler reads in a page and a sitemap: a page's links and title (stdlib's HTML parser),
a sitemap's pages with their last modification dates, and its sitemaps' URLs."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin
from xml.etree import ElementTree


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.base: str | None = None
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.hrefs.append(values["href"])
        elif tag == "base" and values.get("href") and self.base is None:
            self.base = values["href"]
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def read_page(url: str, html: str) -> tuple[str, list[str]]:
    """The page's title (whitespace folded) and the absolute URLs of its links, fragments dropped,
    in order, once each."""
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    base = urljoin(url, parser.base) if parser.base else url
    links = dict.fromkeys(urldefrag(urljoin(base, href.strip()))[0] for href in parser.hrefs)
    return " ".join(parser.title.split()), [link for link in links if link.startswith(("http://", "https://"))]


def _name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def read_sitemap(xml: bytes) -> tuple[dict[str, str | None], list[str]]:
    """A sitemap's pages, each with its ``<lastmod>`` as written (None without one), and for a
    sitemap index, its sitemaps' URLs (namespaces ignored; extensions' nested locations, an image's
    say, are not pages)."""
    root = ElementTree.fromstring(xml)
    entries = [{_name(field.tag): (field.text or "").strip() for field in entry} for entry in root]
    if _name(root.tag) == "sitemapindex":
        return {}, [e["loc"] for e in entries if e.get("loc")]
    return {e["loc"]: e.get("lastmod") or None for e in entries if e.get("loc")}, []
