"""What indexing a document would make, without indexing it: the extractor's text (in its
sandbox, under its limits), the splitter's segments, their tokens, and the price of embedding
them with the model (0 for local models). Nothing is stored or published."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from schemas import ExtractedContent, IndexingSpec, Page
from services.embedder.models import EmbeddingSettings
from services.extractor.parsers import UnextractableDocument
from services.extractor.sandbox import Sandbox
from services.extractor.titles import document_title
from services.splitter.handler import make_segments

PREVIEW_SEGMENTS = 10


@dataclass
class Estimate:
    model: str | None  # None: economy, nothing embedded
    total_segments: int  # as the indexed document will report its segment_count
    tokens: int  # as it will report its token_count
    embedding_tokens: int  # what the model embeds (children and chunks, not parents)
    total_price: float
    currency: str = "USD"
    preview: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


class Estimator:
    def __init__(self, sandbox: Sandbox, embedding: EmbeddingSettings):
        self.sandbox = sandbox  # one document at a time: its caller's alone (services/estimate/queue.py)
        self.embedding = embedding  # chunk sizes by model, and prices

    def from_text(self, name: str, text: str, indexing: IndexingSpec) -> Estimate:
        if not text.strip():
            raise UnextractableDocument("empty document (no text)")
        return self._estimate(name, [Page(text=text)], {}, indexing)

    def from_file(self, name: str, path: Path, indexing: IndexingSpec, stop: threading.Event | None = None) -> Estimate:
        """``stop`` set: the extraction is killed (``ExtractionStopped``)."""
        extraction = self.sandbox.extract(path, stop=stop)
        pages = [Page(number=number, text=text) for number, text in extraction.pages]
        return self._estimate(name, pages, extraction.metadata, indexing)

    def _estimate(self, name: str, pages: list[Page], metadata: dict[str, str], indexing: IndexingSpec) -> Estimate:
        content = ExtractedContent(
            tenant_id="estimate", dataset_id="estimate", document_id="estimate", revision=1, name=name,
            title=document_title(metadata, pages), indexing=indexing, part=0, parts=1, pages=pages,
        )
        segments = make_segments(content, self.embedding)
        counted = [s for s in segments if s.kind != "child"]
        embedded = [s for s in segments if s.kind != "parent"]
        model = indexing.embedding_model if indexing.indexing_technique == "high_quality" else None
        embedding_tokens = sum(s.tokens for s in embedded) if model else 0
        children: dict[str, list[str]] = {}
        for s in segments:
            if s.parent_id:
                children.setdefault(s.parent_id, []).append(s.content)
        return Estimate(
            model=model,
            total_segments=len(counted),
            tokens=sum(s.tokens for s in counted),
            embedding_tokens=embedding_tokens,
            total_price=round(embedding_tokens * self.embedding.prices.get(model or "", 0.0) / 1_000_000, 8),
            preview=[
                {"content": s.content, "child_chunks": children.get(s.segment_id, [])}
                for s in counted[:PREVIEW_SEGMENTS]
            ],
        )
