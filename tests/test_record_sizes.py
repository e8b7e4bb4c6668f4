"""Records stay under the size limit by design: an embedded part too big for one record travels
as pieces, each of which fits, and a child always finds its parent's text in its own piece."""

from __future__ import annotations

import hashlib

import pytest

from schemas import EMBEDDED, EmbeddedBatch, EmbeddedSegment, IndexingSpec
from services.embedder.pieces import into_pieces
from services.indexer.chunk_registry import RegisteredPart, parts_registered, registered_parts
from services.runtime.redis_client import redis_client
from services.runtime.settings import Settings
from tests.support.gateway import Gateway
from tests.test_pipeline_e2e import chunks

LIMIT = 40_000


def segment(position: int, kind: str = "chunk", parent: str | None = None, words: int = 30) -> EmbeddedSegment:
    text = " ".join(f"w{position}x{i}" for i in range(words))
    return EmbeddedSegment(
        segment_id=f"s{position:05d}", position=position, kind=kind, parent_id=parent, content=text,
        content_hash=hashlib.sha256(text.encode()).hexdigest(), tokens=words, word_count=words,
        vector=None if kind == "parent" else [position / 1000.0] * 384,
    )


def batch(segments: list[EmbeddedSegment]) -> EmbeddedBatch:
    return EmbeddedBatch(
        document_id="d", tenant_id="t", dataset_id="ds", revision=1, attempt=1, name="n.txt",
        indexing=IndexingSpec(), part=3, parts=5, model="m", dims=384, segments=segments,
    )


def hierarchy(parents: int, children: int) -> list[EmbeddedSegment]:
    segments: list[EmbeddedSegment] = []
    for _ in range(parents):
        parent = segment(len(segments), "parent", words=400)
        segments.append(parent)
        segments += [segment(len(segments), "child", parent.segment_id) for _ in range(children)]
    return segments


def test_a_part_that_fits_travels_whole():
    small = batch([segment(i) for i in range(5)])
    assert into_pieces(small, LIMIT) == [small]


@pytest.mark.parametrize("segments", [
    [segment(i) for i in range(120)],
    hierarchy(parents=3, children=40),  # each parent's children span several pieces
    hierarchy(parents=30, children=3),  # many small families
])
def test_pieces_fit_keep_every_segment_once_and_carry_parents(segments):
    pieces = into_pieces(batch(segments), LIMIT)

    assert len(pieces) > 1
    assert all(len(EMBEDDED.encode(p)) <= LIMIT for p in pieces)
    assert [(p.piece, p.pieces) for p in pieces] == [(i, len(pieces)) for i in range(len(pieces))]
    assert [s for p in pieces for s in p.own_segments] == segments  # order and positions kept
    for piece in pieces:
        assert (piece.part, piece.parts, piece.revision) == (3, 5, 1)
        carried = {s.segment_id for s in piece.segments if s.kind == "parent"}
        assert {s.parent_id for s in piece.own_segments if s.kind == "child"} <= carried
        copies = [s for s in piece.segments if s.position < piece.first_position]
        assert all(s.kind == "parent" for s in copies)


def test_a_revision_counts_whole_only_when_every_piece_of_every_part_is_registered():
    def entry(part: int, piece: int, pieces: int) -> RegisteredPart:
        registered = RegisteredPart(7, part, "ix", 10, 10, 100, 10, piece=piece, pieces=pieces, first=piece * 10)
        return RegisteredPart.parse(registered.field.encode(), registered.value.encode())

    assert entry(1, 2, 3) == RegisteredPart(7, 1, "ix", 10, 10, 100, 10, piece=2, pieces=3, first=20)
    assert parts_registered([entry(0, 0, 1), entry(1, 0, 3), entry(1, 2, 3)]) == pytest.approx(1 + 2 / 3)
    assert parts_registered([entry(0, 0, 1), entry(1, 0, 3), entry(1, 1, 3), entry(1, 2, 3)]) == 2
    # Entries written before pieces existed read as whole parts.
    assert RegisteredPart.parse(b"7/1", b"ix|10|10|100|10") == RegisteredPart(7, 1, "ix", 10, 10, 100, 10)


def varied_text(paragraphs: int) -> str:
    # Distinct sentences (nothing served from the embedding cache twice), ~200 characters each.
    return "\n\n".join(
        f"Paragraph {n} records that sample {n * 7919 % 10007} of batch {n % 97} weighed {n * 13 % 1000} grams "
        f"and was measured on day {n % 365} by team {n % 17}, "
        f"whose notes mention {hashlib.md5(str(n).encode()).hexdigest()}."
        for n in range(paragraphs)
    )


def test_a_part_with_more_vectors_than_one_record_holds_is_indexed_whole(pipeline: Settings):
    gateway = Gateway(pipeline, tenant="default", dataset="record-sizes")
    # One part (under the extractor's 100,000 characters) cut into ~500 chunks of 50 tokens:
    # with their vectors, well over Kafka's 1 MB.
    text = varied_text(480)
    accepted = gateway.create_text("many-vectors.txt", text, process_rule={
        "mode": "custom", "segmentation": {"separator": "\n\n", "max_tokens": 50, "chunk_overlap": 0},
    })
    state = gateway.wait(accepted["document_id"], accepted["revision"], timeout=300)

    assert state["status"] == "completed", state
    stored = chunks(pipeline, accepted["document_id"])
    assert len(stored) == state["segment_count"] >= 480
    assert sorted(c["position"] for c in stored) == list(range(len(stored)))
    assert pieces_of(pipeline, accepted["document_id"]) > 1
    [hit] = gateway.search("sample 7919 of batch 1", mode="bm25", top_k=1)
    assert hit["document_id"] == accepted["document_id"]


def test_children_split_across_pieces_keep_their_parent(pipeline: Settings):
    gateway = Gateway(pipeline, tenant="default", dataset="record-sizes-parents")
    text = varied_text(300)  # one full-document parent (its first 10,000 tokens), 100+ children
    accepted = gateway.create_text("family.txt", text, process_rule={
        "mode": "hierarchical", "parent_mode": "full_doc",
        "subchunk_segmentation": {"separator": "\n\n", "max_tokens": 50, "chunk_overlap": 0},
    })
    state = gateway.wait(accepted["document_id"], accepted["revision"], timeout=300)

    assert state["status"] == "completed", state
    stored = chunks(pipeline, accepted["document_id"])
    assert len(stored) >= 100 and {c["kind"] for c in stored} == {"child"}
    parents = {c["parent_content"] for c in stored}
    assert len(parents) == 1 and parents.pop().startswith("Paragraph 0 records")
    assert pieces_of(pipeline, accepted["document_id"]) > 1


def pieces_of(settings: Settings, document_id: str) -> int:
    return len(registered_parts(redis_client(settings), settings.keys, f"default/{document_id}"))
