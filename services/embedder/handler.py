"""segments -> embedded. Vectors for every segment search matches (not parents), from the cache
when the same text was embedded before, else from the model in token-budget batches."""

from __future__ import annotations

import threading

from confluent_kafka import Message

from schemas import (
    DocumentRetracted, DocumentStatus, EmbeddedBatch, EmbeddedSegment, MalformedRecord, Segment, SegmentBatch, Stage,
)
from services.embedder.batching import token_budget_batches
from services.embedder.cache import EmbeddingCache
from services.embedder.models import EmbeddingSettings, load_provider
from services.embedder.pieces import into_pieces
from services.embedder.providers import EmbeddingProvider
from services.runtime.errors import PermanentError
from services.runtime.handler import Context, Handler
from services.runtime.metrics import EMBEDDING_CACHE, EMBEDDING_CALL_SECONDS, EMBEDDING_CALL_TEXTS, EMBEDDING_TEXTS
from services.runtime.redis_client import cache_redis_client, redis_client
from services.runtime.revisions import Verdict
from topics.catalog import EMBEDDED, STAGE_INPUTS


class Embedder(Handler):
    stage = Stage.EMBEDDER
    inputs = (STAGE_INPUTS[stage],)
    retractions_to = EMBEDDED
    batch_size = 100  # prepare embeds ahead at most prepare_tokens of them: the rest as they come
    # What prepare() embeds ahead for a batch at most: past it, records embed their own texts as
    # they are handled, so the batch's first documents are not held back behind a long one.
    prepare_tokens = 16_384

    def __init__(self, context: Context, settings: EmbeddingSettings | None = None):
        super().__init__(context)
        self.config = settings or EmbeddingSettings()
        self.redis = redis_client(context.settings)
        self.cache = EmbeddingCache(
            cache_redis_client(context.settings), context.settings.keys, self.config.cache_ttl_seconds
        )
        self._providers: dict[str, EmbeddingProvider] = {}
        self._calls_key = context.settings.keys.embedding_calls
        self._prepared: dict[str, dict[str, list[float]]] = {}  # model -> content hash -> vector

    def provider(self, name: str | None) -> EmbeddingProvider:
        name = name or self.config.default_model
        if name not in self._providers:
            try:
                self._providers[name] = load_provider(name, self.config)
            except ValueError as exc:
                raise PermanentError(str(exc)) from exc
        return self._providers[name]

    def handle(self, message: Message) -> None:
        batch = self.decode(message)
        if isinstance(batch, DocumentRetracted):
            self.context.producer.publish(EMBEDDED, batch)  # on to the indexer, in order
            return
        if not self.admit(message, batch):
            return
        if batch.part == 0:
            self.context.status.emit(batch, DocumentStatus.INDEXING, progress=0.0)
        if batch.indexing.indexing_technique == "economy":
            model, vectors = None, {}
        else:
            model = self.provider(batch.indexing.embedding_model)
            vectors = self._vectors(model, batch)
        embedded = EmbeddedBatch(
            **batch.part_of(),
            model=model.name if model else None,
            dims=model.dims if model else None,
            segments=[EmbeddedSegment(**s.model_dump(), vector=vectors.get(s.content_hash)) for s in batch.segments],
        )
        for piece in into_pieces(embedded, self.context.settings.max_record_bytes):
            self.context.producer.publish(EMBEDDED, piece)

    def prepare(self, messages: list[Message]) -> None:
        """Embed the texts no record of the batch finds in the cache in shared model calls, kept for
        handle(): a batch of one-page documents makes a few full calls instead of one small call each."""
        self._prepared = {}
        missing: dict[str, dict[str, Segment]] = {}  # model -> content hash -> segment
        tokens = 0
        for message in messages:
            if tokens >= self.prepare_tokens:
                break
            try:
                batch = self.decode(message, keep=True)
                if isinstance(batch, DocumentRetracted) or batch.indexing.indexing_technique == "economy":
                    continue
                model = self.provider(batch.indexing.embedding_model)
            except (MalformedRecord, PermanentError):
                continue  # handle() dead-letters it
            if self.judge(batch) is Verdict.CURRENT:
                segments = _embeddable(batch)
                missing.setdefault(model.name, {}).update(segments)
                tokens += sum(s.tokens for s in segments.values())
        # Stops early when an interactive record waits: the batch stops at its next record too.
        self._prepared = {name: self._cached_or_embedded(self._providers[name], segments, self.context.give_way)
                          for name, segments in missing.items()}

    def _vectors(self, model: EmbeddingProvider, batch: SegmentBatch) -> dict[str, list[float]]:
        wanted = _embeddable(batch)
        prepared = self._prepared.get(model.name, {})  # by content hash: any batch's are right
        vectors = {h: prepared[h] for h in wanted if h in prepared}
        vectors.update(self._cached_or_embedded(model, {h: s for h, s in wanted.items() if h not in vectors}))
        return vectors

    def _cached_or_embedded(
        self, model: EmbeddingProvider, wanted: dict[str, Segment], until: threading.Event | None = None
    ) -> dict[str, list[float]]:
        vectors = self.cache.get_many(model.name, list(wanted))
        EMBEDDING_CACHE.labels(model.name, "hit").inc(len(vectors))
        EMBEDDING_CACHE.labels(model.name, "miss").inc(len(wanted) - len(vectors))
        vectors.update(self._embed(model, [s for h, s in wanted.items() if h not in vectors], until))
        return vectors

    def _embed(
        self, model: EmbeddingProvider, segments: list[Segment], until: threading.Event | None = None
    ) -> dict[str, list[float]]:
        """Vectors from the model, cached; texts of similar length batched together (less padding).
        Once ``until`` is set, what is left is not embedded (between model calls)."""
        ordered = sorted(segments, key=lambda s: s.tokens)
        vectors: dict[str, list[float]] = {}
        for indices in token_budget_batches([s.tokens for s in ordered], model.max_batch_tokens, model.max_batch_texts):
            if until is not None and until.is_set():
                break
            with EMBEDDING_CALL_SECONDS.labels(model.name).time():
                computed = model.embed_documents([ordered[i].content for i in indices])
            EMBEDDING_CALL_TEXTS.labels(model.name).observe(len(indices))
            EMBEDDING_TEXTS.labels(model.name).inc(len(indices))
            self.redis.hincrby(self._calls_key, model.name, len(indices))
            fresh = {ordered[i].content_hash: vector for i, vector in zip(indices, computed)}
            self.cache.put_many(model.name, fresh)
            vectors.update(fresh)
        return vectors


def _embeddable(batch: SegmentBatch) -> dict[str, Segment]:
    """The segments search matches, by content hash (parents are returned, never matched)."""
    return {s.content_hash: s for s in batch.segments if s.kind != "parent"}
