"""Cleaning and splitting as in Dify's process rules, with tiktoken token counts."""

from __future__ import annotations

from schemas import ExtractedContent, IndexingSpec, Page, PreProcessingRule, ProcessRule, Segmentation
from services.runtime.tokens import count_tokens
from services.splitter.cleaning import clean
from services.embedder.models import EmbeddingSettings
from services.splitter.handler import make_segments
from services.splitter.splitting import FULL_DOC_MAX_TOKENS, split

PARAGRAPH = "Rivers carve valleys over thousands of years. " * 20  # ~180 tokens


def custom(max_tokens: int = 100, overlap: int = 0, separator: str = "\n\n", **rules: bool) -> ProcessRule:
    return ProcessRule(
        mode="custom",
        segmentation=Segmentation(separator=separator, max_tokens=max_tokens, chunk_overlap=overlap),
        pre_processing_rules=[PreProcessingRule(id=k, enabled=v) for k, v in rules.items()],
    )


def test_cleaning_rules():
    text = "Write to a@b.io or see https://x.io/p now.\n\n\n\n\nNext   \t line\x00\x07 <|endoftext|>"
    assert clean(text, custom()) == "Write to a@b.io or see https://x.io/p now.\n\n\n\n\nNext   \t line <endoftext>"
    assert clean(text, custom(remove_extra_spaces=True)) == (
        "Write to a@b.io or see https://x.io/p now.\n\nNext line <endoftext>"
    )
    assert clean(text, custom(remove_urls_emails=True)) == "Write to  or see  now.\n\n\n\n\nNext   \t line <endoftext>"
    # automatic: remove_extra_spaces only, whatever the rules say
    assert "https://x.io/p" in clean(text, ProcessRule(pre_processing_rules=custom(remove_urls_emails=True).pre_processing_rules))


def test_automatic_merges_paragraphs_up_to_500_tokens_with_overlap():
    text = "\n\n".join(PARAGRAPH for _ in range(8))
    pieces = split(text, ProcessRule())
    sizes = [count_tokens(p.text) for p in pieces]
    assert len(pieces) >= 3 and max(sizes) <= 500
    assert sizes[0] > 300, "neighbouring paragraphs are merged"


def test_automatic_chunks_fit_the_embedding_models_window():
    """MiniLM reads 256 word pieces: automatic chunks for it are 200 tokens, so none is cut; a
    model with a long window (and economy, with none) keeps Dify's 500."""
    def automatic_sizes(**indexing) -> list[int]:
        content = ExtractedContent(
            tenant_id="t", dataset_id="d", document_id="doc", revision=1, name="x.txt", part=0, parts=1,
            indexing=IndexingSpec(**indexing), pages=[Page(text="\n\n".join(PARAGRAPH for _ in range(8)))],
        )
        return [s.tokens for s in make_segments(content, EmbeddingSettings(default_model="all-minilm-l6-v2-int8"))]

    assert max(automatic_sizes()) <= 200 and len(automatic_sizes()) >= 8  # the default model's window
    assert max(automatic_sizes(embedding_model="cohere-embed-english-v3.0")) > 300
    assert max(automatic_sizes(indexing_technique="economy")) > 300


def test_custom_keeps_each_separated_piece_and_splits_only_long_ones():
    text = "short one\n***\nshort two\n***\n" + PARAGRAPH
    pieces = [p.text for p in split(text, custom(max_tokens=60, overlap=10, separator="\\n***\\n"))]
    assert pieces[:2] == ["short one", "short two"]
    assert len(pieces) > 3 and all(count_tokens(p) <= 60 for p in pieces)


def test_hierarchical_paragraph_parents_with_line_children():
    rule = ProcessRule(mode="hierarchical")
    pieces = split("p1 line a\np1 line b\n\np2 only line", rule)
    assert [(p.text, p.children) for p in pieces] == [
        ("p1 line a\np1 line b", ("p1 line a", "p1 line b")),
        ("p2 only line", ("p2 only line",)),
    ]


def test_hierarchical_full_doc_parent_is_capped_at_10000_tokens():
    rule = ProcessRule(mode="hierarchical", parent_mode="full_doc")
    [piece] = split("\n".join(PARAGRAPH for _ in range(70)), rule)
    assert count_tokens(piece.text) <= FULL_DOC_MAX_TOKENS + 1
    assert len(piece.children) > 10


def test_segments_carry_ids_hashes_counts_and_pages():
    content = ExtractedContent(
        tenant_id="t", dataset_id="d", document_id="doc", revision=4, name="x.pdf", part=1, parts=2,
        indexing=IndexingSpec(process_rule=ProcessRule(mode="hierarchical"), doc_form="hierarchical_model"),
        pages=[Page(number=13, text="alpha line\nbeta line"), Page(number=14, text="gamma")],
    )
    segments = make_segments(content, EmbeddingSettings())
    assert [(s.kind, s.page, s.position) for s in segments] == [
        ("parent", 13, 0), ("child", 13, 1), ("child", 13, 2), ("parent", 14, 3), ("child", 14, 4)
    ]
    assert segments[1].parent_id == segments[0].segment_id
    assert segments == make_segments(content, EmbeddingSettings()), "deterministic: a redelivery produces the same ids"
    assert segments[1].tokens == count_tokens("alpha line") and segments[1].word_count == 2
    other_revision = make_segments(content.model_copy(update={"revision": 5}), EmbeddingSettings())
    assert not {s.segment_id for s in segments} & {s.segment_id for s in other_revision}
