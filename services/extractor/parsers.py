"""Text out of a file: PDFs page by page with PDFium (scanned pages by OCR), images by OCR, mail
with Python's email package, everything else with Apache Tika, in UTF-8 whatever it was in.

Runs inside the sandbox process (see sandbox.py): a parser crash or hang costs that process only.
Every failure is an ``UnextractableDocument`` whose message says why, in words an operator can act on.
"""

from __future__ import annotations

import math
import re
import tempfile
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from services.extractor.encodings import as_utf8_markup, bom_encoding, decode, is_plain_utf8, wide_encoding
from services.extractor.errors import UnextractableDocument
from services.extractor.images import image_pages, is_image
from services.extractor.mail import (
    MAIL_CONTENT_TYPE,
    MAIL_SUFFIXES,
    looks_like_mail,
    mail_metadata_from_tika,
    read_mail,
)
from services.extractor.ocr import MAX_OCR_PIXELS, OCR_DPI, recognise
from services.extractor.options import ExtractionLimits, ExtractionOptions, Progress, no_progress

__all__ = ["Extraction", "ExtractionLimits", "ExtractionOptions", "UnextractableDocument", "extract"]

PDF_MAGIC = b"%PDF-"


@dataclass
class Extraction:
    pages: list[tuple[int | None, str]]  # (1-based page number or None, text)
    content_type: str
    metadata: dict[str, str] = field(default_factory=dict)
    ocr_pages: int = 0
    ocr_seconds: float = 0.0


def extract(
    path: Path, limits: ExtractionLimits, options: ExtractionOptions = ExtractionOptions(),
    progress: Progress = no_progress,
) -> Extraction:
    """All the text of ``path``, or an error: a document past a limit fails rather than being cut
    off silently."""
    size = path.stat().st_size
    if size == 0:
        raise UnextractableDocument("empty document (0 bytes)")
    with open(path, "rb") as f:
        head = f.read(4096)
    if PDF_MAGIC in head[:1024]:
        extraction = _extract_pdf(path, limits, options, progress)
    elif is_image(head):
        extraction = _extract_image(path, limits, options, progress)
    elif _is_mail(path, head):
        extraction = _extract_mail(path, limits, options, progress)
    elif (text := _plain_text(path, size, limits.max_chars)) is not None:
        extraction = Extraction([(None, text)], "text/plain")
    else:
        check_archive(path, limits.max_expanded_bytes)
        extraction = _extract_with_tika(path, head, size, limits.max_chars)
    if not any(text.strip() for _, text in extraction.pages):
        raise UnextractableDocument(_why_no_text(extraction, options))
    return extraction


# Read as text whatever their first bytes look like: Tika sniffs content first, and took a text
# file opening with "FLV" for a Flash video.
PLAIN_TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown", ".log"})
# Text that Tika parses for its structure: handed to it as UTF-8 when it is in another encoding.
MARKUP_SUFFIXES = frozenset({".xml", ".html", ".htm", ".xhtml", ".svg"})
TEXT_SUFFIXES = PLAIN_TEXT_SUFFIXES | MARKUP_SUFFIXES | frozenset(
    {".csv", ".tsv", ".json", ".ndjson", ".jsonl", ".yaml", ".yml", ".rst", ".org", ".tex", ".ini", ".cfg"}
)


def _within_text_limit(size: int, max_chars: int) -> bool:
    return size <= 4 * (max_chars + 1)  # larger than any text within the limit: Tika names the limit


def _plain_text(path: Path, size: int, max_chars: int) -> str | None:
    if path.suffix.lower() not in PLAIN_TEXT_SUFFIXES or not _within_text_limit(size, max_chars):
        return None
    text = decode(path.read_bytes())
    if text is None:
        return None
    check_length(len(text), max_chars)
    return text


def _head_text(head: bytes) -> str:
    encoding = (bom_encoding(head) or (None, 0))[0] or wide_encoding(head) or "utf-8"
    return head.decode(encoding, errors="ignore")


def _is_mail(path: Path, head: bytes) -> bool:
    suffix = path.suffix.lower()
    return suffix in MAIL_SUFFIXES or (suffix not in PLAIN_TEXT_SUFFIXES and looks_like_mail(_head_text(head)))


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


def _why_no_text(extraction: Extraction, options: ExtractionOptions) -> str:
    content_type = extraction.content_type
    if extraction.ocr_pages:
        return f"no text found by OCR in {content_type}"
    if content_type == "application/pdf":
        if not options.ocr:
            return "no text layer: scanned PDF and OCR is turned off for this document"
        return "no text: every page of the PDF is blank"
    if content_type.startswith(("audio/", "video/")):
        return f"unsupported type {content_type}: no text to extract"
    return f"no text found in {content_type or 'the document'}"


# A page with less text than this and a picture on it is a scan (perhaps with a stamped page number).
MIN_TEXT_LAYER_CHARS = 16


def _extract_pdf(path: Path, limits: ExtractionLimits, options: ExtractionOptions, progress: Progress) -> Extraction:
    """Each page's text layer; a page without one but with a picture is rendered and OCR'd."""
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        message = str(exc)
        if "password" in message.lower():
            raise UnextractableDocument("encrypted PDF: a password is required") from exc
        raise UnextractableDocument(f"corrupt or unreadable PDF ({message})") from exc
    extraction = Extraction([], "application/pdf")
    chars = 0
    try:
        count = len(document)
        if count > limits.max_pages:
            raise UnextractableDocument(
                f"{count:,} pages, over the {limits.max_pages:,} page limit (INDEXFLOW_EXTRACTOR_MAX_PAGES)"
            )
        for number, page in enumerate(document, start=1):
            textpage = page.get_textpage()
            text = textpage.get_text_range().replace("\r\n", "\n").replace("\r", "\n")
            textpage.close()
            if options.ocr and len(text.strip()) < MIN_TEXT_LAYER_CHARS and _has_picture(page):
                ocr = recognise(_rendered(page), options.ocr_languages, limits.ocr_page_timeout)
                text = ocr.text
                extraction.ocr_pages += 1
                extraction.ocr_seconds += ocr.seconds
                progress(number, count)
            page.close()
            extraction.pages.append((number, text))
            chars += len(text)
            check_length(chars, limits.max_chars)
    finally:
        document.close()
    extraction.metadata["pages"] = str(len(extraction.pages))
    return extraction


def _has_picture(page) -> bool:
    import pypdfium2.raw as pdfium_c

    return next(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE]), None) is not None


def _rendered(page):
    """The page as a 300 dpi scan of it, smaller when that would be a poster's worth of pixels."""
    width, height = page.get_size()  # in points, 72 to the inch
    scale = min(OCR_DPI / 72, math.sqrt(MAX_OCR_PIXELS / max(1.0, width * height)))
    return page.render(scale=scale, grayscale=True).to_pil()


def _extract_image(path: Path, limits: ExtractionLimits, options: ExtractionOptions, progress: Progress) -> Extraction:
    content_type, pages = image_pages(path, limits, options, progress)
    extraction = Extraction([(number, ocr.text) for number, ocr in pages], content_type,
                            ocr_pages=len(pages), ocr_seconds=sum(ocr.seconds for _, ocr in pages))
    check_length(sum(len(text) for _, text in extraction.pages), limits.max_chars)
    return extraction


def _extract_mail(path: Path, limits: ExtractionLimits, options: ExtractionOptions, progress: Progress) -> Extraction:
    # Attachments are read like documents of their own, but never their own attachments.
    nested_limits = replace(limits, max_attachments=0)

    def read_attachment(name: str, data: bytes) -> tuple[str, int, float]:
        with tempfile.TemporaryDirectory(prefix="indexflow-attachment-") as folder:
            file = Path(folder) / ("attachment" + re.sub(r"[^A-Za-z0-9.]", "", Path(name).suffix)[:16])
            file.write_bytes(data)
            nested = extract(file, nested_limits, options, progress)
        return "\n\n".join(text for _, text in nested.pages), nested.ocr_pages, nested.ocr_seconds

    mail = read_mail(path.read_bytes(), read_attachment, limits.max_attachments)
    check_length(len(mail.text), limits.max_chars)
    return Extraction([(None, mail.text)], MAIL_CONTENT_TYPE, mail.metadata, mail.ocr_pages, mail.ocr_seconds)


def _utf8_copy(path: Path, head: bytes, size: int, max_chars: int) -> bytes | None:
    """A text file in an encoding Tika would misread (UTF-16 without a mark, an XML declaration
    that names another encoding), re-encoded as UTF-8; None when it is fine as it is."""
    suffix = path.suffix.lower()
    marked = bom_encoding(head) is not None or wide_encoding(head) is not None
    if not (suffix in TEXT_SUFFIXES or marked) or not _within_text_limit(size, max_chars):
        return None
    raw = path.read_bytes()
    if is_plain_utf8(raw) or (text := decode(raw)) is None:
        return None
    if suffix in MARKUP_SUFFIXES or text.lstrip("\ufeff \t\r\n").startswith("<"):
        return as_utf8_markup(text)
    return text.encode("utf-8")


def _extract_with_tika(path: Path, head: bytes, size: int, max_chars: int) -> Extraction:
    utf8 = _utf8_copy(path, head, size, max_chars)
    if utf8 is None:
        return _tika(path, max_chars)
    with tempfile.TemporaryDirectory(prefix="indexflow-utf8-") as folder:
        copy = Path(folder) / ("document" + (path.suffix[:16] or ".txt"))
        copy.write_bytes(utf8)
        return _tika(copy, max_chars)


def _tika(path: Path, max_chars: int) -> Extraction:
    from iscc_tika import Extractor

    extractor = Extractor()
    # Tika stops at its limit without saying so: one character more tells a cut from a fit.
    extractor.set_extract_string_max_length(max_chars + 1)
    try:
        text, metadata = extractor.extract_file_to_string(str(path))
    except Exception as exc:  # noqa: BLE001 - Tika reports every parse failure as one opaque error
        raise UnextractableDocument(f"cannot parse: {_tika_reason(exc)}") from exc
    flat = {key: _first(value) for key, value in metadata.items()}
    content_type = flat.get("Content-Type", "").split(";")[0].strip()
    if content_type == "application/x-tika-ooxml-protected" or flat.get("pdf:encrypted") == "true":
        raise UnextractableDocument("encrypted document: a password is required")
    if content_type in ("application/octet-stream", ""):
        raise UnextractableDocument("unsupported or unrecognised file type")
    check_length(len(text), max_chars)
    kept = {k: flat[k] for k in ("dc:title", "dc:creator", "dc:language") if k in flat}
    if content_type == "application/vnd.ms-outlook":
        kept.update(mail_metadata_from_tika(flat))
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
