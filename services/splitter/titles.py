"""A document's title, when its text starts with one: a short first line that is not a sentence."""

from __future__ import annotations

MAX_TITLE_CHARS = 120
MAX_TITLE_WORDS = 16


def title_of(text: str) -> str | None:
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        words = line.split()
        if len(line) <= MAX_TITLE_CHARS and len(words) <= MAX_TITLE_WORDS and not line.endswith((".", "?", "!", ":", ";", ",")):
            return line
        return None
    return None
