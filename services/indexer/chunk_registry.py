"""The chunk registry: for every part the indexer wrote, where its chunks are and how many. It is
written before the chunks, so every chunk that may be in the index can be named by id (removal
without a query) and counted (the reconciler's audit). State Redis hash ``chunks:{document}``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import redis

from schemas import segment_id
from services.runtime.keys import RedisKeys


@dataclass(frozen=True)
class RegisteredPart:
    revision: int
    part: int
    index: str
    positions: int  # ids 0..positions-1 (parents included: deleting an absent id is harmless)
    segments: int
    tokens: int
    indexed: int | None  # chunks written (parents are not); None in entries older than the count

    @classmethod
    def parse(cls, field_name: bytes, value: bytes) -> RegisteredPart:
        revision, part = map(int, field_name.decode().split("/"))
        index, positions, segments, tokens, *indexed = value.decode().split("|")
        return cls(
            revision, part, index, int(positions), int(segments), int(tokens), int(indexed[0]) if indexed else None
        )

    @property
    def field(self) -> str:
        return f"{self.revision}/{self.part}"

    @property
    def value(self) -> str:
        return f"{self.index}|{self.positions}|{self.segments}|{self.tokens}|{self.indexed}"

    def chunk_ids(self, document_key: str) -> Iterator[str]:
        for position in range(self.positions):
            yield segment_id(document_key, self.revision, self.part, position)


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
