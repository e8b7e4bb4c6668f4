"""The extractor's settings (``INDEXFLOW_EXTRACTOR_*``): its sandbox's limits, OCR, and the size of parts."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas import OcrSpec
from services.extractor.options import ExtractionLimits, ExtractionOptions
from services.extractor.sandbox import Sandbox


class ExtractorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INDEXFLOW_EXTRACTOR_", extra="ignore")

    # Without progress (a page OCR'd) for this long, an extraction is hung; in all, it may take max_seconds.
    timeout_seconds: float = 120.0
    max_seconds: float = 3600.0
    memory_limit_mb: int = 2048
    # RAGFlow cuts big PDFs into 12-page tasks; a part is also capped in characters so a record
    # stays far below Kafka's 1 MB.
    pages_per_part: int = 12
    max_part_chars: int = 100_000
    # A document past a limit ends in error with the limit named; nothing is ever cut off.
    max_text_chars: int = 50_000_000
    max_pages: int = 10_000
    max_expanded_bytes: int = 2**30
    max_attachments: int = 20
    # OCR with Tesseract: a document's indexing spec may turn it off or name its own languages.
    ocr_enabled: bool = True
    ocr_languages: str = "eng"
    ocr_page_timeout_seconds: float = 120.0

    def limits(self) -> ExtractionLimits:
        return ExtractionLimits(self.max_text_chars, self.max_pages, self.max_expanded_bytes,
                                self.ocr_page_timeout_seconds, self.max_attachments)

    def options(self, ocr: OcrSpec) -> ExtractionOptions:
        return ExtractionOptions(ocr=self.ocr_enabled and ocr.enabled,
                                 ocr_languages=ocr.languages or self.ocr_languages)

    def sandbox(self, niceness: int = 0) -> Sandbox:
        return Sandbox(self.timeout_seconds, self.memory_limit_mb, self.limits(), self.max_seconds, niceness)
