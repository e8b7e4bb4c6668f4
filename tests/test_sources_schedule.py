"""A source's schedule: a run is due ``every`` seconds after the last one finished, never while one
runs, never for a source synced only when asked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.sources.definitions import FolderConfig, new_source
from services.sources.service import due
from services.sources.store import Run

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_a_run_is_due_every_seconds_after_the_last_one_finished():
    hourly = new_source("t", "d", "folder", "n", FolderConfig(path="/srv/docs"), 3600)
    assert due(hourly, None, NOW), "never synced"
    finished = Run(trigger="schedule", status="completed", started_at=NOW - timedelta(hours=2),
                   finished_at=NOW - timedelta(minutes=59))
    assert not due(hourly, finished, NOW)
    assert due(hourly, finished, NOW + timedelta(minutes=1))
    running = Run(trigger="manual", started_at=NOW - timedelta(hours=5))
    assert not due(hourly, running, NOW), "a running run is resumed, not started again"


def test_a_manual_source_is_never_due():
    manual = new_source("t", "d", "folder", "n", FolderConfig(path="/srv/docs"), None)
    assert not due(manual, None, NOW)
