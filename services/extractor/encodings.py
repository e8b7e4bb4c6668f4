"""Which encoding text is in, detected from its bytes and never assumed: byte order marks first,
then UTF-16/32 without one (recognised by where the zero bytes fall), then UTF-8, then the legacy
code pages charset-normalizer tells apart (cp1252, Shift-JIS, ...)."""

from __future__ import annotations

import codecs
import re

import charset_normalizer

_BOMS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_SAMPLE = 4096


def bom_encoding(raw: bytes) -> tuple[str, int] | None:
    """The encoding a byte order mark names, and the mark's length."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return encoding, len(bom)
    return None


def wide_encoding(raw: bytes) -> str | None:
    """UTF-16 or UTF-32 without a byte order mark: text in Latin script has a zero byte beside
    nearly every character, always on the same side."""
    sample = raw[: min(len(raw), _SAMPLE) // 4 * 4]
    if len(sample) < 8:
        return None
    quads = len(sample) // 4
    zeros = [sample[column::4].count(0) / quads for column in range(4)]
    if zeros[1] > 0.9 and zeros[2] > 0.9:  # the two middle bytes of a UTF-32 unit below U+10000
        if zeros[0] > 0.9:
            return "utf-32-be"
        if zeros[3] > 0.9:
            return "utf-32-le"
    even, odd = sample[0::2].count(0) / (2 * quads), sample[1::2].count(0) / (2 * quads)
    if even > 0.4 and odd < 0.05:
        return "utf-16-be"
    if odd > 0.4 and even < 0.05:
        return "utf-16-le"
    return None


def decode(raw: bytes) -> str | None:
    """``raw`` as text, or None when it is not text in any encoding (a binary file)."""
    if (marked := bom_encoding(raw)) is not None:
        encoding, skip = marked
        return _checked(raw[skip:], encoding)
    if (wide := wide_encoding(raw)) is not None:
        return _checked(raw, wide)
    if (text := _checked(raw, "utf-8")) is not None:
        return text
    best = _legacy(raw)
    return None if best is None else _printable(str(best))


def _legacy(raw: bytes):
    """charset-normalizer's best guess; among code pages it cannot tell apart (cp1250, cp1252 and
    cp1257 read most Western text equally well) the one most text is in, as browsers assume."""
    matches = charset_normalizer.from_bytes(raw)
    best = matches.best()
    if best is None:
        return None
    tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    return next((m for m in tied if "cp1252" in m.could_be_from_charset), best)


def is_plain_utf8(raw: bytes) -> bool:
    """Already what every parser reads without guessing: UTF-8 without a byte order mark."""
    return bom_encoding(raw) is None and wide_encoding(raw) is None and _checked(raw, "utf-8") is not None


def _checked(raw: bytes, encoding: str) -> str | None:
    try:
        return _printable(raw.decode(encoding))
    except UnicodeDecodeError:
        return None


_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def _printable(text: str) -> str | None:
    """Text has (almost) no control characters; a binary file decoded by force has many."""
    sample = text[:_SAMPLE]
    if "\x00" in sample or len(_CONTROL.findall(sample)) > 0.01 * max(1, len(sample)):
        return None
    return text


_DECLARED = re.compile(
    rb"""(<\?xml[^>]*?encoding\s*=\s*["'])([^"']+)(["'])|(<meta[^>]*?charset\s*=\s*["']?)([^"'\s/>;]+)""",
    re.IGNORECASE,
)


def as_utf8_markup(text: str) -> bytes:
    """XML or HTML re-encoded as UTF-8, with the encoding it declares (an XML declaration, a meta
    charset) made to say so: a parser that trusts the declaration reads what is really there."""
    raw = text.encode("utf-8")
    head, rest = raw[:2048], raw[2048:]

    def utf8(match: re.Match) -> bytes:
        if match.group(1) is not None:
            return match.group(1) + b"UTF-8" + match.group(3)
        return match.group(4) + b"utf-8"

    return _DECLARED.sub(utf8, head) + rest
