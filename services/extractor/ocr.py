"""Text out of a picture of a page, with Tesseract (Debian's ``tesseract-ocr``, run by pytesseract).

Runs inside the sandbox process: Tesseract is a child of it, so the sandbox's time and memory
limits cover it (sandbox.py counts the whole process tree and kills it as one group)."""

from __future__ import annotations

import functools
import os
import re
import time
from dataclasses import dataclass

from PIL import Image

from services.extractor.errors import UnextractableDocument

# 300 dpi is what Tesseract is trained for; a page rendered larger only costs time.
OCR_DPI = 300
# A page (or a photo) past this many pixels is scaled down before OCR: a poster-sized page at
# 300 dpi would take minutes and gigabytes.
MAX_OCR_PIXELS = 40_000_000


@dataclass(frozen=True)
class OcrPage:
    text: str
    seconds: float


@functools.cache
def installed_languages() -> frozenset[str]:
    import pytesseract

    try:
        return frozenset(pytesseract.get_languages(config=""))
    except (pytesseract.TesseractNotFoundError, OSError) as exc:
        raise UnextractableDocument(
            "OCR engine not found: tesseract is not installed (./dev installs Debian's tesseract-ocr)"
        ) from exc


LANGUAGES = re.compile(r"^[A-Za-z_]{3,16}(\+[A-Za-z_]{3,16})*$")


def check_languages(languages: str) -> None:
    if not LANGUAGES.match(languages):
        raise UnextractableDocument(f"OCR languages {languages!r} are not Tesseract's names, such as 'eng+deu'")
    missing = [code for code in languages.split("+") if code not in installed_languages()]
    if missing:
        raise UnextractableDocument(
            f"OCR language {missing[0]!r} is not installed (installed: {', '.join(sorted(installed_languages()))})"
        )


def recognise(image: Image.Image, languages: str, timeout: float) -> OcrPage:
    """The text of one page image, in reading order."""
    import pytesseract

    check_languages(languages)
    # Tesseract's OpenMP threads spin against each other and the pipeline's services: one thread
    # read a dense page in 2.3 s here, its default threads in 15 s.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    image = _prepared(image)
    started = time.monotonic()
    try:
        text = pytesseract.image_to_string(image, lang=languages, timeout=timeout)
    except RuntimeError as exc:  # pytesseract's only way of saying it killed a page past its time
        if "timeout" in str(exc).lower():
            raise UnextractableDocument(
                f"OCR of a page took over {timeout:.0f}s (INDEXFLOW_EXTRACTOR_OCR_PAGE_TIMEOUT_SECONDS)"
            ) from exc
        raise
    except pytesseract.TesseractError as exc:
        raise UnextractableDocument(f"OCR failed: {exc.message or exc.status}"[:300]) from exc
    return OcrPage(text.replace("\x0c", "").strip(), time.monotonic() - started)


def _prepared(image: Image.Image) -> Image.Image:
    """Grey, on white, and of a size Tesseract reads well."""
    if "A" in image.getbands() or (image.mode == "P" and "transparency" in image.info):
        on_white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        on_white.alpha_composite(image.convert("RGBA"))  # a transparent background would turn black
        image = on_white
    if image.mode not in ("L", "1"):
        image = image.convert("L")
    pixels = image.width * image.height
    if pixels > MAX_OCR_PIXELS:
        factor = (MAX_OCR_PIXELS / pixels) ** 0.5
        image = image.resize((max(1, int(image.width * factor)), max(1, int(image.height * factor))))
    return image
