"""Contracts round-trip through orjson; anything unreadable raises the one typed error."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

import schemas
from schemas import (
    BlobSource,
    DeadLetter,
    DocumentCommand,
    DocumentDeleted,
    DocumentState,
    DocumentUpserted,
    EmbeddedBatch,
    EmbeddedSegment,
    ExtractedContent,
    IndexingSpec,
    InlineSource,
    MalformedRecord,
    Page,
    ProcessRule,
    Segment,
    SegmentBatch,
    StatusEvent,
)
from services.cli.schemas_export import export_json_schemas
from topics import CATALOG

IDENTITY = {"tenant_id": "acme", "dataset_id": "handbook", "document_id": "doc-1", "revision": 3}
HASH = "ab" * 32
HIERARCHICAL = IndexingSpec(process_rule=ProcessRule(mode="hierarchical"), doc_form="hierarchical_model")

SAMPLES = [
    (schemas.DOCUMENT_EVENTS, DocumentUpserted(**IDENTITY, name="a.txt", source=InlineSource(text="hello"))),
    (
        schemas.DOCUMENT_EVENTS,
        DocumentUpserted(
            **IDENTITY,
            name="report.pdf",
            mime_type="application/pdf",
            source=BlobSource(uri="file:///blobs/acme/doc-1", size=10, sha256=HASH),
            metadata={"author": "x", "pages": 3},
            indexing=HIERARCHICAL,
        ),
    ),
    (schemas.DOCUMENT_EVENTS, DocumentDeleted(**IDENTITY)),
    (schemas.DOCUMENT_EVENTS, DocumentCommand(**IDENTITY, command="pause", reason="maintenance")),
    (
        schemas.EXTRACTED,
        ExtractedContent(
            **IDENTITY, name="r.pdf", indexing=IndexingSpec(), part=1, parts=3, pages=[Page(number=13, text="p13")]
        ),
    ),
    (
        schemas.SEGMENTS,
        SegmentBatch(
            **IDENTITY,
            name="r.pdf",
            indexing=HIERARCHICAL,
            part=0,
            parts=1,
            segments=[
                Segment(segment_id="p", position=0, kind="parent", content="a b", content_hash=HASH, tokens=2, word_count=2),
                Segment(
                    segment_id="c", position=1, kind="child", parent_id="p", content="a", content_hash=HASH, tokens=1,
                    word_count=1, page=1,
                ),
            ],
        ),
    ),
    (
        schemas.EMBEDDED,
        EmbeddedBatch(
            **IDENTITY,
            name="r.pdf",
            indexing=IndexingSpec(),
            part=0,
            parts=1,
            model="m",
            dims=2,
            segments=[
                EmbeddedSegment(
                    segment_id="s", position=0, content="x", content_hash=HASH, tokens=1, word_count=1, vector=[0.5, -1.0]
                )
            ],
        ),
    ),
    (schemas.STATUS, StatusEvent(**IDENTITY, status="parsing", stage="extractor", progress=0.25)),
    (
        schemas.STATE,
        DocumentState(
            **IDENTITY,
            status="completed",
            stage="indexer",
            progress=1.0,
            transitions={"waiting": datetime(2026, 1, 1, tzinfo=UTC), "completed": datetime(2026, 1, 1, 0, 1, tzinfo=UTC)},
            indexing_latency=60.0,
            updated_at=datetime(2026, 1, 1, 0, 1, tzinfo=UTC),
        ),
    ),
    (
        schemas.DEAD_LETTERS,
        DeadLetter(
            stage="splitter", error="boom", error_type="ValueError", attempts=3, source_topic="t",
            source_partition=1, source_offset=7, source_key="acme/doc-1", source_value_b64="eyJ4Ijox",
            source_headers=[("h", "AA==")],
        ),
    ),
]


@pytest.mark.parametrize(("codec", "event"), SAMPLES, ids=[type(e).__name__ for _, e in SAMPLES])
def test_round_trip(codec, event):
    raw = codec.encode(event)
    assert isinstance(raw, bytes)
    assert codec.decode(raw) == event
    assert orjson.loads(raw)["schema_version"] == 1


@pytest.mark.parametrize(("codec", "event"), SAMPLES, ids=[type(e).__name__ for _, e in SAMPLES])
def test_the_compact_encoding_leaves_defaults_out_and_decodes_to_the_same_event(codec, event):
    raw = codec.encode_compact(event)
    assert codec.decode(raw) == event
    assert len(raw) <= len(codec.encode(event))


def test_key_is_tenant_qualified():
    event = DocumentDeleted(**IDENTITY)
    assert event.key == "acme/doc-1"
    assert DocumentDeleted(**{**IDENTITY, "tenant_id": "other"}).key != event.key


def test_documents_topic_dispatches_on_type():
    raw = schemas.DOCUMENT_EVENTS.encode(DocumentCommand(**IDENTITY, command="retry"))
    assert isinstance(schemas.DOCUMENT_EVENTS.decode(raw), DocumentCommand)


def test_unknown_fields_are_tolerated_for_additive_evolution():
    data = orjson.loads(schemas.STATUS.encode(SAMPLES[7][1]))
    data["added_in_a_later_minor_version"] = 1
    assert schemas.STATUS.decode(orjson.dumps(data)) == SAMPLES[7][1]


def _upsert_with(**changes) -> bytes:
    data = orjson.loads(schemas.DOCUMENT_EVENTS.encode(SAMPLES[0][1]))
    data.update(changes)
    return orjson.dumps(data)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x00\xffnot json", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (None, "no value"),
        (_upsert_with(schema_version=2), "schema_version 2 is not supported"),
        (_upsert_with(type="document.exploded"), "does not match any of the expected tags"),
        (_upsert_with(revision=-1), "revision"),
        (_upsert_with(document_id="a/b"), "document_id"),
        (_upsert_with(source={"kind": "inline", "text": "x" * (256 * 1024 + 1)}), "upload it to the blob store"),
        (_upsert_with(source={"kind": "blob", "uri": "http://elsewhere/x"}), "source.blob.uri"),
        (
            _upsert_with(indexing={"process_rule": {"mode": "hierarchical"}, "doc_form": "text_model"}),
            "hierarchical",
        ),
        (
            _upsert_with(indexing={"process_rule": {"mode": "custom", "segmentation": {"max_tokens": 10}}}),
            "max_tokens",
        ),
    ],
)
def test_malformed_records_raise_the_typed_error(raw, reason):
    with pytest.raises(MalformedRecord) as caught:
        schemas.DOCUMENT_EVENTS.decode(raw)
    assert caught.value.contract == "documents"
    assert reason in str(caught.value)


def test_json_schema_export(tmp_path: Path):
    written = export_json_schemas(tmp_path)
    assert sorted(p.name for p in written) == sorted(
        [f"{spec.name}.v1.schema.json" for spec in CATALOG] + ["segment-list.v1.schema.json"])
    documents = orjson.loads((tmp_path / "documents.v1.schema.json").read_bytes())
    assert documents["x-key"] == "tenant_id/document_id"
    assert documents["x-bulk-topic"] == "documents.bulk"
    upsert = documents["$defs"]["DocumentUpserted"]
    assert {"tenant_id", "dataset_id", "document_id", "revision", "name", "source"} <= set(upsert["required"])
    status = orjson.loads((tmp_path / "status.v1.schema.json").read_bytes())
    assert "completed" in status["$defs"]["DocumentStatus"]["enum"]
