"""extracted -> segments. Cleans each page of a part and splits it by the document's process rule."""

from __future__ import annotations

import hashlib

from confluent_kafka import Message

from schemas import DocumentRetracted, DocumentStatus, ExtractedContent, Segment, SegmentBatch, Stage, segment_id
from services.embedder.models import EmbeddingSettings, automatic_chunk_tokens
from services.runtime.handler import Context, Handler
from services.runtime.metrics import SEGMENTS_MADE
from services.runtime.tokens import count_tokens
from services.splitter.cleaning import clean
from services.splitter.splitting import split
from topics.catalog import SEGMENTS, STAGE_INPUTS


def make_segments(content: ExtractedContent, embedding: EmbeddingSettings) -> list[Segment]:
    segments: list[Segment] = []

    def add(text: str, page: int | None, kind: str, parent_id: str | None = None, stable_id: str | None = None,
            enabled: bool = True) -> str:
        sid = segment_id(content.key, content.revision, content.part, len(segments))
        segments.append(
            Segment(
                segment_id=sid,
                stable_id=stable_id,
                enabled=enabled,
                position=len(segments),
                kind=kind,
                parent_id=parent_id,
                content=text,
                content_hash=hashlib.sha256(text.encode()).hexdigest(),
                tokens=count_tokens(text),
                word_count=len(text.split()),
                page=page,
            )
        )
        return sid

    if content.segments is not None:  # given by an editor: taken as they are, ids kept
        for given in content.segments:
            if given.children:
                parent = add(given.content, given.page, "parent", stable_id=given.id, enabled=given.enabled)
                for child in given.children:
                    add(child.content, given.page, "child", parent, stable_id=child.id, enabled=given.enabled)
            else:
                add(given.content, given.page, "chunk", stable_id=given.id, enabled=given.enabled)
        return segments

    rule = content.indexing.process_rule
    automatic_tokens = automatic_chunk_tokens(content.indexing, embedding)
    for page in content.pages:
        for piece in split(clean(page.text, rule), rule, automatic_tokens):
            if piece.children:
                parent = add(piece.text, page.number, "parent")
                for child in piece.children:
                    add(child, page.number, "child", parent)
            else:
                add(piece.text, page.number, "chunk")
    return segments


class Splitter(Handler):
    stage = Stage.SPLITTER
    inputs = (STAGE_INPUTS[stage],)
    retractions_to = SEGMENTS
    batch_size = 100

    def __init__(self, context: Context, embedding: EmbeddingSettings | None = None):
        super().__init__(context)
        self.embedding = embedding or EmbeddingSettings()  # the default model sizes automatic chunks

    def handle(self, message: Message) -> None:
        content = self.decode(message)
        if isinstance(content, DocumentRetracted):
            self.context.producer.publish(SEGMENTS, content)  # on to the indexer, in order
            return
        if not self.admit(message, content):
            return
        if content.part == 0:
            self.context.status.emit(content, DocumentStatus.SPLITTING, progress=0.0)
        segments = make_segments(content, self.embedding)
        # Every part is published, even one with no segments, so the indexer can count parts.
        self.context.producer.publish(SEGMENTS, SegmentBatch(**content.part_of(), segments=segments))
        SEGMENTS_MADE.inc(len(segments))
