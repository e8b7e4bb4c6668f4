"""What an extraction is allowed (the deployment's limits) and asked for (one document's options),
and the callback it reports its progress through."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ExtractionLimits:
    """Past any of these a document ends in ``error`` naming the limit; nothing is cut off."""

    max_chars: int = 50_000_000
    max_pages: int = 10_000
    # What a zip-based file (docx, xlsx, pptx, odt, epub, zip) may declare it unpacks to, checked
    # before a parser opens it; a bomb that lies in its headers meets the sandbox's memory limit.
    max_expanded_bytes: int = 2**30
    ocr_page_timeout: float = 120.0
    # A mail's attachments are read as part of it, up to this many (and not attachments of theirs).
    max_attachments: int = 20


@dataclass(frozen=True)
class ExtractionOptions:
    """One document's choices: OCR on or off, and the Tesseract languages of its pages."""

    ocr: bool = True
    ocr_languages: str = "eng"


# Called with (pages done, pages in all) as a long extraction (OCR) moves on.
Progress = Callable[[int, int], None]


def no_progress(done: int, total: int) -> None:
    """For an extraction nobody watches."""
