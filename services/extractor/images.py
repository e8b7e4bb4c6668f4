"""Text out of images (PNG, JPEG, TIFF with its pages, BMP, GIF, WebP, HEIC) by OCR, a page per frame."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageSequence, UnidentifiedImageError

from services.extractor.errors import UnextractableDocument
from services.extractor.ocr import recognise
from services.extractor.options import ExtractionLimits, ExtractionOptions, Progress

# Magic numbers of the image formats read here (HEIC/AVIF: an ISO media "ftyp" box of theirs).
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"BM", b"GIF87a", b"GIF89a")
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif")


def is_image(head: bytes) -> bool:
    if head.startswith(_SIGNATURES):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    return head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS


def _open(path: Path) -> Image.Image:
    import pillow_heif

    pillow_heif.register_heif_opener()
    try:
        return Image.open(path)
    except Image.DecompressionBombError as exc:
        raise UnextractableDocument(f"image too large to read ({exc})") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise UnextractableDocument(f"corrupt or unreadable image ({exc})"[:300]) from exc


def image_pages(path: Path, limits: ExtractionLimits, options: ExtractionOptions, progress: Progress):
    """(content type, [(page number, OCR page)]) of an image file, every frame OCR'd."""
    with _open(path) as image:
        content_type = Image.MIME.get(image.format or "", f"image/{(image.format or 'unknown').lower()}")
        if not options.ocr:
            raise UnextractableDocument(f"no text: {content_type} image and OCR is turned off for this document")
        frames = getattr(image, "n_frames", 1)
        if frames > limits.max_pages:
            raise UnextractableDocument(
                f"{frames:,} pages, over the {limits.max_pages:,} page limit (INDEXFLOW_EXTRACTOR_MAX_PAGES)"
            )
        pages = []
        try:
            for number, frame in enumerate(ImageSequence.Iterator(image), start=1):
                pages.append((number, recognise(frame, options.ocr_languages, limits.ocr_page_timeout)))
                progress(number, frames)
        except OSError as exc:  # a truncated file fails when a frame is decoded, not when it is opened
            raise UnextractableDocument(f"corrupt or unreadable image ({exc})"[:300]) from exc
    return content_type, pages
