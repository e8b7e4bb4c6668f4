"""Cut a document's pages into parts that each fit comfortably in one Kafka record."""

from __future__ import annotations

from schemas import Page
from schemas.edited import GivenSegment


def _split_long(page: Page, max_chars: int) -> list[Page]:
    """A page longer than a part (a huge spreadsheet, a text file) is cut at line breaks."""
    pieces, text = [], page.text
    while len(text) > max_chars:
        cut = text.rfind("\n", 0, max_chars)
        cut = cut if cut > max_chars // 2 else max_chars
        pieces.append(Page(number=page.number, text=text[:cut]))
        text = text[cut:]
    pieces.append(Page(number=page.number, text=text))
    return pieces


def into_parts(pages: list[Page], pages_per_part: int, max_chars: int) -> list[list[Page]]:
    parts: list[list[Page]] = [[]]
    size = 0
    for page in (piece for p in pages for piece in _split_long(p, max_chars)):
        if parts[-1] and (len(parts[-1]) >= pages_per_part or size + len(page.text) > max_chars):
            parts.append([])
            size = 0
        parts[-1].append(page)
        size += len(page.text)
    return parts


def segments_into_parts(segments: list[GivenSegment], max_chars: int) -> list[list[GivenSegment]]:
    """Given segments, in order, in parts of about ``max_chars`` (a segment is never cut)."""
    parts: list[list[GivenSegment]] = [[]]
    size = 0
    for segment in segments:
        length = len(segment.content) + sum(len(child.content) for child in segment.children)
        if parts[-1] and size + length > max_chars:
            parts.append([])
            size = 0
        parts[-1].append(segment)
        size += length
    return parts
