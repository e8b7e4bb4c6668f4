"""The documents topic: what upstream systems publish (upserts, deletes, control commands)."""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from pydantic import AfterValidator, Field, model_validator

from schemas.envelope import ContentHash, Contract, Envelope

# Inline text travels in the record; anything larger belongs in the blob store.
MAX_INLINE_TEXT_BYTES = 256 * 1024


class PreProcessingRule(Contract):
    id: Literal["remove_extra_spaces", "remove_urls_emails"]
    enabled: bool


class Segmentation(Contract):
    separator: str = "\n\n"
    max_tokens: int = Field(default=500, ge=50, le=2000)
    chunk_overlap: int = Field(default=50, ge=0)

    @model_validator(mode="after")
    def _overlap_below_max(self) -> Segmentation:
        if self.chunk_overlap >= self.max_tokens:
            raise ValueError("chunk_overlap must be smaller than max_tokens")
        return self


def _default_pre_processing() -> list[PreProcessingRule]:
    return [
        PreProcessingRule(id="remove_extra_spaces", enabled=True),
        PreProcessingRule(id="remove_urls_emails", enabled=False),
    ]


class ProcessRule(Contract):
    """How text is cleaned and split (Dify's process rule)."""

    mode: Literal["automatic", "custom", "hierarchical"] = "automatic"
    pre_processing_rules: list[PreProcessingRule] = Field(default_factory=_default_pre_processing)
    segmentation: Segmentation = Field(default_factory=Segmentation)
    # hierarchical only: what a parent is, and how parents split into the children search matches.
    parent_mode: Literal["paragraph", "full_doc"] = "paragraph"
    subchunk_segmentation: Segmentation = Field(
        default_factory=lambda: Segmentation(separator="\n", max_tokens=200, chunk_overlap=0)
    )


class OcrSpec(Contract):
    """OCR of images and of scanned PDF pages: on unless turned off, in the document's Tesseract
    languages ("eng+deu"), else the deployment's (INDEXFLOW_EXTRACTOR_OCR_LANGUAGES)."""

    enabled: bool = True
    languages: str | None = Field(default=None, pattern=r"^[A-Za-z_]{3,16}(\+[A-Za-z_]{3,16})*$", max_length=200)


class IndexingSpec(Contract):
    """How one document is processed; travels with it through every stage."""

    process_rule: ProcessRule = Field(default_factory=ProcessRule)
    indexing_technique: Literal["high_quality", "economy"] = "high_quality"
    doc_form: Literal["text_model", "hierarchical_model"] = "text_model"
    # None: the deployment's default embedding model.
    embedding_model: str | None = None
    ocr: OcrSpec = Field(default_factory=OcrSpec)

    @model_validator(mode="after")
    def _doc_form_matches_mode(self) -> IndexingSpec:
        hierarchical_rule = self.process_rule.mode == "hierarchical"
        if hierarchical_rule != (self.doc_form == "hierarchical_model"):
            raise ValueError("doc_form 'hierarchical_model' goes with process_rule mode 'hierarchical'")
        return self


class InlineSource(Contract):
    kind: Literal["inline"] = "inline"
    text: str

    @model_validator(mode="after")
    def _small_enough(self) -> InlineSource:
        size = len(self.text.encode("utf-8"))
        if size > MAX_INLINE_TEXT_BYTES:
            raise ValueError(
                f"inline text is {size} bytes (limit {MAX_INLINE_TEXT_BYTES}); upload it to the blob store"
            )
        return self


class BlobSource(Contract):
    kind: Literal["blob"] = "blob"
    uri: str = Field(pattern=r"^(file|s3)://.+", description="file:// (embedded) or s3:// (production)")
    size: int | None = Field(default=None, ge=0)


Source = Annotated[InlineSource | BlobSource, Field(discriminator="kind")]
# Bounded, as it travels in every record of the document and is stored with its chunks.
MAX_METADATA_FIELDS = 100
MAX_METADATA_CHARS = 4096
MetadataKey = Annotated[str, Field(min_length=1, max_length=128)]
MetadataValue = Annotated[str, Field(max_length=MAX_METADATA_CHARS)] | int | float | bool | None
MAX_METADATA_BYTES = 16 * 1024  # all of it, encoded: records stay far below Kafka's 1 MB


def _small_enough(metadata: dict) -> dict:
    size = len(orjson.dumps(metadata))
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"metadata of {size:,} bytes, over the {MAX_METADATA_BYTES:,} byte limit")
    return metadata


Metadata = Annotated[
    dict[MetadataKey, MetadataValue], Field(max_length=MAX_METADATA_FIELDS), AfterValidator(_small_enough)
]


class DocumentUpserted(Envelope):
    type: Literal["document.upserted"] = "document.upserted"
    name: str = Field(min_length=1, max_length=512)
    mime_type: str | None = None
    source: Source
    metadata: Metadata = Field(default_factory=dict)
    indexing: IndexingSpec = Field(default_factory=IndexingSpec)
    attempt: int = Field(default=1, ge=1, description="1, plus one for every retry or re-drive")
    content_hash: ContentHash | None = Field(
        default=None, description="SHA-256 of the source's bytes (text as UTF-8), hex: the gateway answers an "
        "upsert of unchanged content, name, metadata and indexing with the document's state, not a new revision",
    )


class DocumentDeleted(Envelope):
    type: Literal["document.deleted"] = "document.deleted"


class DocumentCommand(Envelope):
    """Operator control of one document, at the revision it names."""

    type: Literal["document.command"] = "document.command"
    command: Literal["pause", "resume", "cancel", "retry"]
    reason: str | None = None


DocumentEvent = Annotated[DocumentUpserted | DocumentDeleted | DocumentCommand, Field(discriminator="type")]
