"""The extractor's settings (``INDEXFLOW_EXTRACTOR_*``): its sandbox's limits and the size of parts."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from services.extractor.parsers import ExtractionLimits
from services.extractor.sandbox import Sandbox


class ExtractorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INDEXFLOW_EXTRACTOR_", extra="ignore")

    timeout_seconds: float = 120.0
    memory_limit_mb: int = 2048
    # RAGFlow cuts big PDFs into 12-page tasks; a part is also capped in characters so a record
    # stays far below Kafka's 1 MB.
    pages_per_part: int = 12
    max_part_chars: int = 100_000
    # A document past a limit ends in error with the limit named; nothing is ever cut off.
    max_text_chars: int = 50_000_000
    max_pages: int = 10_000
    max_expanded_bytes: int = 2**30

    def limits(self) -> ExtractionLimits:
        return ExtractionLimits(self.max_text_chars, self.max_pages, self.max_expanded_bytes)

    def sandbox(self) -> Sandbox:
        return Sandbox(self.timeout_seconds, self.memory_limit_mb, self.limits())
