"""Watchdog and reconciler settings (``INDEXFLOW_WATCHDOG_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WatchdogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INDEXFLOW_WATCHDOG_", extra="ignore")

    # A document whose state has not moved for this long is re-driven. Long enough for the
    # slowest honest stage (a 600-page PDF waits behind a busy extractor).
    stall_seconds: float = Field(default=900.0, gt=0)
    # Attempts (the first run included) before a stuck document ends in error.
    max_attempts: int = Field(default=3, ge=1)
    sweep_interval_seconds: float = Field(default=30.0, gt=0)
    reconcile_interval_seconds: float = Field(default=3600.0, gt=0)
    # After the embedded broker restarted, documents that have not moved since are re-driven once
    # this long has passed (what a durable broker kept moves again within it).
    restart_grace_seconds: float = Field(default=20.0, ge=0)
    # The projector must have shown life this recently, or states are not news and nothing is
    # judged stuck.
    projector_silence_seconds: float = Field(default=60.0, gt=0)
    # A process counts as live (the metric indexflow_live_processes) while its newest heartbeat
    # is this recent; processes beat every 5 s, and a stopped one takes its stamp away at once.
    heartbeat_silence_seconds: float = Field(default=30.0, gt=0)
