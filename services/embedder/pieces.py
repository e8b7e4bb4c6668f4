"""Cut an embedded part whose record would pass the size limit into pieces that each fit.

Vectors multiply a part's size (a 100,000-character part in 50-token chunks carries ~500 of
them), so the bound is applied here, where the size becomes known. Segments keep their order and
positions; a child whose parent travels in an earlier piece gets a copy of that parent, so the
indexer can still store the parent's text with it."""

from __future__ import annotations

from schemas import EMBEDDED, EmbeddedBatch, EmbeddedSegment
from schemas.codec import Codec

_SEGMENT = Codec("embedded segment", EmbeddedSegment)
# The piece fields and list punctuation a piece adds to the envelope it is measured by.
_PIECE_OVERHEAD = 128


def into_pieces(batch: EmbeddedBatch, max_bytes: int) -> list[EmbeddedBatch]:
    """``batch`` itself when its record fits in ``max_bytes``, else pieces that each fit (a single
    segment bigger than the limit still gets a piece of its own; the producer then rejects it)."""
    if len(EMBEDDED.encode(batch)) <= max_bytes:
        return [batch]
    budget = max_bytes - len(EMBEDDED.encode(batch.model_copy(update={"segments": []}))) - _PIECE_OVERHEAD
    parents = {s.segment_id: s for s in batch.segments if s.kind == "parent"}
    size = {s.segment_id: len(_SEGMENT.encode(s)) + 1 for s in batch.segments}

    def cost(segment: EmbeddedSegment, present: set[str]) -> int:
        """Its own size, plus a copy of its parent if the piece has neither the parent nor a sibling."""
        copy = segment.parent_id in parents and segment.parent_id not in present
        return size[segment.segment_id] + (size[segment.parent_id] if copy else 0)

    groups: list[list[EmbeddedSegment]] = [[]]
    present: set[str] = set()  # parents whose text this piece already carries
    used = 0
    for segment in batch.segments:
        if groups[-1] and used + cost(segment, present) > budget:
            groups.append([])
            present, used = set(), 0
        used += cost(segment, present)
        groups[-1].append(segment)
        if segment.kind == "parent":
            present.add(segment.segment_id)
        elif segment.parent_id:
            present.add(segment.parent_id)

    pieces = []
    for number, own in enumerate(groups):
        ids = {s.segment_id for s in own}
        copies = sorted(
            {s.parent_id for s in own if s.parent_id and s.parent_id not in ids},
            key=lambda parent_id: parents[parent_id].position,
        )
        pieces.append(batch.model_copy(update={
            "segments": [parents[c] for c in copies] + own,
            "piece": number,
            "pieces": len(groups),
            "first_position": own[0].position,
        }))
    return pieces

