"""Pre-processing rules applied before splitting (as Dify's CleanProcessor)."""

from __future__ import annotations

import re

from schemas import ProcessRule

_INVALID = re.compile(r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F\uFFFE]")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_MANY_SPACES = re.compile(r"[\t\f\r\x20\u00a0\u1680\u180e\u2000-\u200a\u202f\u205f\u3000]{2,}")
_EMAIL = re.compile(r"([a-zA-Z0-9_.+-]+@[a-zA-Z0-9-]+\.[a-zA-Z0-9-.]+)")
_URL = re.compile(r"https?://[^\s]+")


def clean(text: str, rule: ProcessRule) -> str:
    # Always: control characters, and the special-token markers that confuse tokenizers.
    text = _INVALID.sub("", text.replace("<|", "<").replace("|>", ">"))
    enabled = {r.id for r in rule.pre_processing_rules if r.enabled}
    if rule.mode == "automatic":
        enabled = {"remove_extra_spaces"}
    if "remove_extra_spaces" in enabled:
        text = _MANY_SPACES.sub(" ", _MANY_NEWLINES.sub("\n\n", text))
    if "remove_urls_emails" in enabled:
        text = _URL.sub("", _EMAIL.sub("", text))
    return text.strip()
