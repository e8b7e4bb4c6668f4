"""documents -> extracted. Reads each upserted document's source, extracts its text in the sandbox,
and publishes it as parts of at most ``pages_per_part`` pages. Also carries out control commands."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
from confluent_kafka import Message
from pydantic import ValidationError

from schemas import (
    DocumentCommand,
    DocumentDeleted,
    DocumentRetracted,
    DocumentStatus,
    DocumentUpserted,
    ExtractedContent,
    InlineSource,
    Page,
    Stage,
)
from schemas.documents import MAX_METADATA_BYTES, MAX_METADATA_CHARS, MAX_METADATA_FIELDS, Metadata
from schemas.edited import SEGMENT_LIST_MIME, SegmentList
from services.extractor.options import Progress
from services.extractor.parsers import UnextractableDocument, check_length
from services.extractor.parts import into_parts, segments_into_parts
from services.extractor.settings import ExtractorSettings
from services.extractor.titles import document_title
from services.runtime.blobs import BlobStore
from services.runtime.errors import PermanentError
from services.runtime.handler import Context, Handler
from services.runtime.metrics import OCR_SECONDS, PAGES
from services.runtime.redis_client import redis_client
from services.runtime.registry import DocumentRegistry, redrive
from services.runtime.revisions import Verdict
from topics.catalog import EXTRACTED, STAGE_INPUTS


def merged_metadata(given: Metadata, extracted: dict[str, str]) -> Metadata:
    """The document's own metadata, and what extraction found (title, author, language, pages)
    where the names are free and the contract's bounds leave room."""
    merged = dict(given)
    for key, value in extracted.items():
        if key not in merged and len(merged) < MAX_METADATA_FIELDS:
            candidate = {**merged, key: value[:MAX_METADATA_CHARS]}
            if len(orjson.dumps(candidate)) <= MAX_METADATA_BYTES:
                merged = candidate
    return merged


PROGRESS_EVERY_SECONDS = 5.0


class Extractor(Handler):
    stage = Stage.EXTRACTOR
    inputs = (STAGE_INPUTS[stage],)
    retractions_to = EXTRACTED
    batch_size = 100  # tiny texts by the hundred; long extractions end a batch by time (the loop)

    def __init__(self, context: Context, settings: ExtractorSettings | None = None):
        super().__init__(context)
        self.config = settings or ExtractorSettings()
        self.sandbox = self.config.sandbox()
        self.blobs = BlobStore(context.settings)
        self.registry = DocumentRegistry(redis_client(context.settings), context.settings.keys, self.blobs)
        self._to_register: list[DocumentUpserted] = []  # the batch's upserts, registered at its flush

    def handle(self, message: Message) -> None:
        event = self.decode(message)
        if isinstance(event, DocumentUpserted):
            admitted = self.admit(message, event)
            if admitted or self.context.revisions.verdict(event.key, event.revision) is Verdict.PAUSED:
                self._to_register.append(event)  # what retry, resume commands and the watchdog go by
            if admitted:
                self._extract(event)
            return
        self.flush()  # a delete or a command goes by the registry as the records before it left it
        if isinstance(event, DocumentDeleted):
            self.context.revisions.check(event)  # makes in-flight records of older revisions stale
            self.registry.forget(event)
            self._retract(event, "deleted")
        else:
            self._command(event)

    def flush(self) -> None:
        """Register the upserts handled since the last flush together, before offsets are committed."""
        upserts, self._to_register = self._to_register, []
        self.registry.remember_many(upserts)

    def _retract(self, event: DocumentDeleted | DocumentCommand, reason: str) -> None:
        """Follow the document's content downstream, in order, to the indexer."""
        self.context.producer.publish(EXTRACTED, DocumentRetracted(**event.identity(), reason=reason))

    def _extract(self, event: DocumentUpserted) -> None:
        status = self.context.status
        status.emit(event, DocumentStatus.PARSING, name=event.name, progress=0.0, attempts=event.attempt)
        if event.mime_type == SEGMENT_LIST_MIME:  # given as its segments: they go on as they are
            given = self._segment_list(event)
            title, content_type, metadata = given.title, SEGMENT_LIST_MIME, event.metadata
            contents = [{"pages": [], "segments": part}
                        for part in segments_into_parts(given.segments, self.config.max_part_chars)]
        else:
            pages, content_type, extracted = self._pages(event)
            title, metadata = document_title(extracted, pages), merged_metadata(event.metadata, extracted)
            contents = [{"pages": part}
                        for part in into_parts(pages, self.config.pages_per_part, self.config.max_part_chars)]
        for index, content in enumerate(contents):
            self.context.producer.publish(
                EXTRACTED,
                ExtractedContent(
                    **event.identity(),
                    name=event.name,
                    title=title,
                    indexing=event.indexing,
                    mime_type=content_type,
                    metadata=metadata,
                    part=index,
                    parts=len(contents),
                    **content,
                ),
            )

    def _segment_list(self, event: DocumentUpserted) -> SegmentList:
        try:
            return SegmentList.model_validate_json(self.blobs.source_of(event))
        except ValidationError as exc:
            raise PermanentError(f"unreadable segment list: {exc}") from exc

    def _pages(self, event: DocumentUpserted) -> tuple[list[Page], str | None, dict[str, str]]:
        if isinstance(event.source, InlineSource):
            if not event.source.text.strip():
                raise PermanentError("empty document (no text)")
            try:
                check_length(len(event.source.text), self.config.max_text_chars)
            except UnextractableDocument as exc:
                raise PermanentError(str(exc)) from exc
            PAGES.labels("text").inc()
            return [Page(text=event.source.text)], event.mime_type or "text/plain", {}
        options = self.config.options(event.indexing.ocr)
        with self.blobs.local_file(event.source.uri, event.tenant_id, suffix=Path(event.name).suffix[:16]) as path:
            try:
                extraction = self.sandbox.extract(path, options, self._reporter(event))
            except UnextractableDocument as exc:
                raise PermanentError(str(exc)) from exc
        PAGES.labels("ocr").inc(extraction.ocr_pages)
        PAGES.labels("text").inc(len(extraction.pages) - extraction.ocr_pages)
        OCR_SECONDS.inc(extraction.ocr_seconds)
        if extraction.ocr_pages:
            self.context.status.emit(event, DocumentStatus.PARSING, progress=1.0, ocr_pages=extraction.ocr_pages,
                                     ocr_seconds=round(extraction.ocr_seconds, 3))
        pages = [Page(number=number, text=text) for number, text in extraction.pages]
        return pages, extraction.content_type, extraction.metadata

    def _reporter(self, event: DocumentUpserted) -> Progress:
        """Reports a long extraction's progress (pages OCR'd) every few seconds: the state moves, so
        the watchdog does not take the document for stuck."""
        last = time.monotonic()

        def report(done: int, total: int) -> None:
            nonlocal last
            if time.monotonic() - last >= PROGRESS_EVERY_SECONDS:
                last = time.monotonic()
                self.context.status.emit(event, DocumentStatus.PARSING, progress=round(done / max(1, total), 4))

        return report

    def _command(self, command: DocumentCommand) -> None:
        revisions, status = self.context.revisions, self.context.status
        if command.command == "cancel":
            revisions.close(command)
            status.emit(command, DocumentStatus.CANCELLED, error=command.reason)
            self._retract(command, "cancelled")
        elif command.command == "pause":
            revisions.pause(command)
            status.emit(command, DocumentStatus.PAUSED)
        elif command.command == "resume":
            parked = revisions.resume(command)
            for topic, key, value in parked:
                self.context.producer.send(topic, key, value)
            self.context.producer.flush()  # re-published for sure before the parked copies go
            revisions.forget_parked(command, len(parked))
            status.emit(command, DocumentStatus.WAITING)
        elif command.command == "retry":
            again = redrive(self.registry, revisions, self.context.producer, status, command.key,
                            priority=command.priority)
            if again is None:
                raise PermanentError(f"nothing to retry: no upsert of {command.key} is known")

    def close(self) -> None:
        self.sandbox.close()
