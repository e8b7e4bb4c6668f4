"""Token-bounded splitting: automatic, custom and hierarchical (parent-child), as in Dify.

Lengths are tiktoken tokens; the recursive separator fallback is langchain's splitter."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from langchain_text_splitters import RecursiveCharacterTextSplitter

from schemas import ProcessRule, Segmentation
from services.runtime.tokens import count_tokens, encoding

AUTOMATIC_MAX_TOKENS = 500  # Dify's; a model with a shorter window asks for less
# As Dify: a full-document parent is the document's first 10,000 tokens.
FULL_DOC_MAX_TOKENS = 10_000
FALLBACK_SEPARATORS = ["\n\n", "。", ". ", " ", ""]


@dataclass(frozen=True)
class Piece:
    text: str
    children: tuple[str, ...] = ()


def _unescape(separator: str) -> str:
    # Users type "\n" in forms and JSON strings as a literal backslash-n.
    return separator.replace("\\n", "\n").replace("\\t", "\t")


def _recursive(segmentation: Segmentation, separators: list[str]) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        separators=list(dict.fromkeys(separators)),
        chunk_size=segmentation.max_tokens,
        chunk_overlap=segmentation.chunk_overlap,
        # The splitter measures each piece more than once (splitting, then merging): counted once
        # per splitter, which lives for one text.
        length_function=lru_cache(maxsize=None)(count_tokens),
        keep_separator=False,
    )


def merge_split(text: str, segmentation: Segmentation) -> list[str]:
    """Automatic mode: split at the best separator and merge neighbours up to the token limit."""
    return _clean(_recursive(segmentation, FALLBACK_SEPARATORS).split_text(text))


def fixed_split(text: str, segmentation: Segmentation) -> list[str]:
    """Custom and hierarchical modes (Dify's fixed separator): every piece between two separators
    is its own chunk; only a piece over the token limit is split further, recursively."""
    fallback = _recursive(segmentation, FALLBACK_SEPARATORS)
    chunks: list[str] = []
    for piece in text.split(_unescape(segmentation.separator)):
        chunks += fallback.split_text(piece) if count_tokens(piece) > segmentation.max_tokens else [piece]
    return _clean(chunks)


def _clean(chunks: list[str]) -> list[str]:
    return [chunk.strip() for chunk in chunks if chunk.strip()]


def automatic(max_tokens: int = AUTOMATIC_MAX_TOKENS) -> Segmentation:
    """The automatic rule's chunks: merged up to ``max_tokens``, overlapping by a tenth (as Dify's 500/50)."""
    return Segmentation(separator="\n\n", max_tokens=max_tokens, chunk_overlap=max_tokens // 10)


def split(text: str, rule: ProcessRule, automatic_tokens: int = AUTOMATIC_MAX_TOKENS) -> list[Piece]:
    """Flat chunks, or parents each with its children for the hierarchical mode."""
    if rule.mode == "automatic":
        return [Piece(chunk) for chunk in merge_split(text, automatic(automatic_tokens))]
    if rule.mode == "custom":
        return [Piece(chunk) for chunk in fixed_split(text, rule.segmentation)]
    if rule.parent_mode == "full_doc":
        parents = [encoding().decode(encoding().encode(text, disallowed_special=())[:FULL_DOC_MAX_TOKENS])]
    else:
        parents = fixed_split(text, rule.segmentation)
    pieces = []
    for parent in parents:
        children = fixed_split(parent, rule.subchunk_segmentation)
        if children:
            pieces.append(Piece(parent, tuple(children)))
    return pieces
