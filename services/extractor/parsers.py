"""Text out of a file: PDFs page by page with PDFium, everything else with Apache Tika.

Runs inside the sandbox process (see sandbox.py): a parser crash or hang costs that process only.
Every failure is an ``UnextractableDocument`` whose message says why, in words an operator can act on.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

PDF_MAGIC = b"%PDF-"


class UnextractableDocument(Exception):
    """The document yields no text, for the reason given."""


@dataclass(frozen=True)
class ExtractionLimits:
    """Past any of these a document ends in ``error`` naming the limit; nothing is cut off."""

    max_chars: int = 50_000_000
    max_pages: int = 10_000
    # What a zip-based file (docx, xlsx, pptx, odt, epub, zip) may declare it unpacks to, checked
    # before a parser opens it; a bomb that lies in its headers meets the sandbox's memory limit.
    max_expanded_bytes: int = 2**30


@dataclass
class Extraction:
    pages: list[tuple[int | None, str]]  # (1-based page number or None, text)
    content_type: str
    metadata: dict[str, str] = field(default_factory=dict)


def extract(path: Path, limits: ExtractionLimits) -> Extraction:
    """All the text of ``path``, or an error: a document past a limit fails rather than being cut
    off silently."""
    size = path.stat().st_size
    if size == 0:
        raise UnextractableDocument("empty document (0 bytes)")
    with open(path, "rb") as f:
        head = f.read(1024)
    if PDF_MAGIC in head:
        extraction = _extract_pdf(path, limits)
    elif (text := _plain_text(path, size, limits.max_chars)) is not None:
        extraction = Extraction([(None, text)], "text/plain")
    else:
        check_archive(path, limits.max_expanded_bytes)
        extraction = _extract_with_tika(path, limits.max_chars)
    if not any(text.strip() for _, text in extraction.pages):
        raise UnextractableDocument(_why_no_text(extraction.content_type))
    return extraction


# Read as they are when they are UTF-8: Tika sniffs content first, and took a text file opening
# with "FLV" for a Flash video. Other encodings (UTF-16, cp1252) still go through its detection.
PLAIN_TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown", ".log"})


def _plain_text(path: Path, size: int, max_chars: int) -> str | None:
    if path.suffix.lower() not in PLAIN_TEXT_SUFFIXES or size > 4 * (max_chars + 1):
        return None  # larger than any text within the limit can be: Tika's path names the limit
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\x00" in text:
        return None
    check_length(len(text), max_chars)
    return text.removeprefix("\ufeff")


def check_length(chars: int, max_chars: int) -> None:
    if chars > max_chars:
        raise UnextractableDocument(
            f"text over the {max_chars:,} character limit (INDEXFLOW_EXTRACTOR_MAX_TEXT_CHARS): "
            "not indexed rather than cut off"
        )


def check_archive(path: Path, max_expanded_bytes: int) -> None:
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            expanded = sum(entry.file_size for entry in archive.infolist())
    except (zipfile.BadZipFile, OSError):
        return  # the parser reports what is wrong with it
    if expanded > max_expanded_bytes:
        raise UnextractableDocument(
            f"archive expands to {expanded // 2**20:,} MB, over the {max_expanded_bytes // 2**20:,} MB limit "
            f"(INDEXFLOW_EXTRACTOR_MAX_EXPANDED_BYTES; a zip bomb?)"
        )


def _why_no_text(content_type: str) -> str:
    if content_type.startswith("image/"):
        return f"no text: {content_type} image and OCR is not enabled"
    if content_type == "application/pdf":
        return "no text layer: scanned PDF and OCR is not enabled"
    if content_type.startswith(("audio/", "video/")):
        return f"unsupported type {content_type}: no text to extract"
    return f"no text found in {content_type or 'the document'}"


def _extract_pdf(path: Path, limits: ExtractionLimits) -> Extraction:
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        message = str(exc)
        if "password" in message.lower():
            raise UnextractableDocument("encrypted PDF: a password is required") from exc
        raise UnextractableDocument(f"corrupt or unreadable PDF ({message})") from exc
    pages = []
    chars = 0
    try:
        if len(document) > limits.max_pages:
            raise UnextractableDocument(
                f"{len(document):,} pages, over the {limits.max_pages:,} page limit (INDEXFLOW_EXTRACTOR_MAX_PAGES)"
            )
        for number, page in enumerate(document, start=1):
            textpage = page.get_textpage()
            pages.append((number, textpage.get_text_range().replace("\r\n", "\n").replace("\r", "\n")))
            textpage.close()
            page.close()
            chars += len(pages[-1][1])
            check_length(chars, limits.max_chars)
    finally:
        document.close()
    return Extraction(pages, "application/pdf", {"pages": str(len(pages))})


def _extract_with_tika(path: Path, max_chars: int) -> Extraction:
    from iscc_tika import Extractor

    extractor = Extractor()
    # Tika stops at its limit without saying so: one character more tells a cut from a fit.
    extractor.set_extract_string_max_length(max_chars + 1)
    try:
        text, metadata = extractor.extract_file_to_string(str(path))
    except Exception as exc:  # noqa: BLE001 - Tika reports every parse failure as one opaque error
        raise UnextractableDocument(f"cannot parse: {_tika_reason(exc)}") from exc
    content_type = _first(metadata.get("Content-Type")).split(";")[0].strip()
    if content_type == "application/x-tika-ooxml-protected" or _first(metadata.get("pdf:encrypted")) == "true":
        raise UnextractableDocument("encrypted document: a password is required")
    if content_type in ("application/octet-stream", ""):
        raise UnextractableDocument("unsupported or unrecognised file type")
    check_length(len(text), max_chars)
    kept = {k: _first(metadata[k]) for k in ("dc:title", "dc:creator", "dc:language") if k in metadata}
    return Extraction([(None, text)], content_type, kept)


def _first(value) -> str:
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return "" if value is None else str(value)


def _tika_reason(exc: Exception) -> str:
    message = str(exc)
    for prefix in ('ParseError("Parse error occurred : ', 'ParseError("'):
        if message.startswith(prefix):
            message = message[len(prefix) :].rstrip('")')
    return re.sub(r"@[0-9a-f]{6,}", "", message)[:300]  # drop Java object ids: reasons must group
