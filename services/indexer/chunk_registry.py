"""The chunk registry: for every part the indexer wrote, where its chunks are and how many. It is
written before the chunks, so every chunk that may be in the index can be named by id (removal
without a query) and counted (the reconciler's audit). State Redis hash ``chunks:{document}``,
one field ``revision/part/piece`` per embedded record."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import redis

from schemas import segment_id
from services.runtime.keys import RedisKeys


@dataclass(frozen=True)
class RegisteredPart:
    """One embedded record written: a whole part, or one piece of a part too big for one record."""

    revision: int
    part: int
    index: str
    positions: int  # ids first..first+positions-1 (parents included: deleting an absent id is harmless)
    segments: int
    tokens: int
    indexed: int | None  # chunks written (parents are not); None in entries older than the count
    piece: int = 0
    pieces: int = 1
    first: int = 0
    words: int = 0  # of its segments (parents, not their children): the document's word count

    @classmethod
    def parse(cls, field_name: bytes, value: bytes) -> RegisteredPart:
        revision, part, *piece = map(int, field_name.decode().split("/"))
        index, positions, segments, tokens, *rest = value.decode().split("|")
        indexed, first, pieces, words = rest + [None, 0, 1, 0][len(rest):]  # older entries lack the last fields
        return cls(
            revision, part, index, int(positions), int(segments), int(tokens),
            int(indexed) if indexed is not None else None, piece[0] if piece else 0, int(pieces), int(first),
            int(words),
        )

    @property
    def field(self) -> str:
        return f"{self.revision}/{self.part}/{self.piece}"

    @property
    def value(self) -> str:
        return (f"{self.index}|{self.positions}|{self.segments}|{self.tokens}|{self.indexed}|{self.first}|{self.pieces}"
                f"|{self.words}")

    def chunk_ids(self, document_key: str) -> Iterator[str]:
        for position in range(self.first, self.first + self.positions):
            yield segment_id(document_key, self.revision, self.part, position)


def parts_registered(parts: list[RegisteredPart]) -> float:
    """How many parts of one revision are registered, a part counting by the share of its pieces
    seen (so equal to the revision's part count exactly when every piece of every part is in)."""
    seen: dict[int, set[int]] = defaultdict(set)
    pieces: dict[int, int] = {}
    for p in parts:
        seen[p.part].add(p.piece)
        pieces[p.part] = p.pieces
    return sum(len(seen[part]) / pieces[part] for part in seen)


def chunks_written(parts: list[RegisteredPart], revision: int) -> int | None:
    """How many chunks of ``revision`` were written, by its registered parts; None when the
    registry cannot say (nothing registered, or entries older than the count)."""
    counts = [p.indexed for p in parts if p.revision == revision]
    if not counts or None in counts:
        return None
    return sum(counts)


def registered_parts(client: redis.Redis, keys: RedisKeys, document_key: str) -> list[RegisteredPart]:
    return registered_parts_of(client, keys, [document_key])[document_key]


def registered_parts_of(
    client: redis.Redis, keys: RedisKeys, document_keys: list[str]
) -> dict[str, list[RegisteredPart]]:
    """The registries of several documents in one round trip."""
    with client.pipeline(transaction=False) as pipe:
        for key in document_keys:
            pipe.hgetall(keys.chunks(key))
        found = pipe.execute()
    return {
        key: [RegisteredPart.parse(f, v) for f, v in entries.items()] for key, entries in zip(document_keys, found)
    }
