"""Scans made from known text, so what OCR reads back can be checked word for word (tests and
bench/extraction.py)."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

KNOWN_TEXT = (
    "The quarterly maintenance report covers the pumping stations along the northern river. "
    "Inspectors found that seven of the twelve stations needed new seals before winter, and two "
    "required replacement motors. The budget for these repairs was approved in October, and the "
    "work should be finished by the middle of December. Residents near the eastern station "
    "complained about noise during night shifts, so the contractor agreed to limit heavy work to "
    "daylight hours. Water quality measurements stayed within the legal limits throughout the "
    "period, although turbidity rose briefly after the September storms. The next inspection is "
    "planned for March, when the flood barriers will also be tested under full load."
)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def recovered(expected: str, got: str) -> float:
    """The share of the expected words found, in order-insensitive multiset terms."""
    pool: dict[str, int] = {}
    for word in words(got):
        pool[word] = pool.get(word, 0) + 1
    found = 0
    for word in words(expected):
        if pool.get(word, 0) > 0:
            pool[word] -= 1
            found += 1
    return found / len(words(expected))


def page_image(text: str = KNOWN_TEXT, width: int = 2480) -> Image.Image:
    """A page as a scanner at 300 dpi gives it: black 12-point text on white, wrapped."""
    font = ImageFont.load_default(size=42)
    lines, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if font.getlength(candidate) > width - 300:
            lines.append(line)
            line = word
        else:
            line = candidate
    lines.append(line)
    image = Image.new("L", (width, 300 + 64 * len(lines) + 300), 255)
    draw = ImageDraw.Draw(image)
    for index, text_line in enumerate(lines):
        draw.text((150, 300 + 64 * index), text_line, font=font, fill=0)
    return image


def scanned_pdf(path: Path, *pages: Image.Image) -> Path:
    pages[0].convert("RGB").save(path, save_all=True, append_images=[p.convert("RGB") for p in pages[1:]],
                                 resolution=300.0)
    return path
