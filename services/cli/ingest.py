"""Upload files through the gateway and follow them until every document is terminal."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from schemas import TERMINAL_STATUSES
from services.runtime.settings import Settings


@dataclass
class IngestSummary:
    documents: int = 0
    completed: int = 0
    error: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    segments: int = 0
    seconds: float = 0.0
    states: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        return {k: getattr(self, k) for k in ("documents", "completed", "error", "errors", "segments", "seconds")}


def collect_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and not any(x.startswith(".") for x in p.parts))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")
    return files


def ingest(
    settings: Settings,
    files: list[Path],
    dataset: str,
    tenant: str,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
    timeout: float = 3600.0,
) -> IngestSummary:
    started = time.monotonic()
    batch = uuid.uuid4().hex
    headers = {"X-Tenant-Id": tenant, "X-Batch-Id": batch}
    base = f"{settings.gateway_url}/v1/datasets/{dataset}"
    with httpx.Client(timeout=120) as client:
        for path in files:
            with open(path, "rb") as f:
                response = client.post(f"{base}/document/create-by-file", headers=headers, files={"file": (path.name, f)})
            response.raise_for_status()
        deadline = time.monotonic() + timeout
        while True:
            states = client.get(f"{base}/documents/{batch}/indexing-status", headers=headers).json()["data"]
            done = sum(1 for s in states if s["status"] in TERMINAL_STATUSES)
            on_progress(done, len(files))
            if done >= len(files) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    summary = IngestSummary(documents=len(files), seconds=round(time.monotonic() - started, 2), states=states)
    reasons = Counter(s.get("error") or "unknown" for s in states if s["status"] == "error")
    summary.completed = sum(1 for s in states if s["status"] == "completed")
    summary.error = sum(reasons.values())
    summary.errors = dict(reasons.most_common())
    summary.segments = sum(s.get("segment_count") or 0 for s in states if s["status"] == "completed")
    return summary
