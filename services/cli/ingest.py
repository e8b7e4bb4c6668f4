"""Sync files into a dataset through the gateway, then follow them until every document is terminal.

Each file is one document whose id derives from the dataset and the file's path under the folder
given (its name, for a file given alone), so a second run finds the same documents: a file whose
content its document already has is skipped without a request, a changed one is uploaded as an
update of its document, and with ``prune`` every document of the dataset that no file stands for
is deleted."""

from __future__ import annotations

import hashlib
import itertools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

from schemas import RERUN_STATUSES, TERMINAL_STATUSES, Priority
from services.runtime.settings import Settings

_STATES_PER_REQUEST = 1000  # what the gateway's states route takes at once
_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class LocalFile:
    path: Path
    relative: str  # the path under the folder given, "/"-separated

    def sha256(self) -> str:
        digest = hashlib.sha256()
        with open(self.path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()


@dataclass
class IngestSummary:
    documents: int = 0  # files
    created: int = 0
    updated: int = 0
    unchanged: int = 0  # skipped: their documents already had this content
    deleted: int = 0  # pruned: documents no file stands for any more
    completed: int = 0
    error: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    segments: int = 0
    seconds: float = 0.0
    states: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        return self.__dict__


def collect_files(paths: list[Path]) -> list[LocalFile]:
    files: list[LocalFile] = []
    for path in paths:
        if path.is_dir():
            files += [
                LocalFile(p, p.relative_to(path).as_posix()) for p in sorted(path.rglob("*"))
                if p.is_file() and not any(x.startswith(".") for x in p.relative_to(path).parts)
            ]
        elif path.is_file():
            files.append(LocalFile(path, path.name))
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")
    return files


def document_id_for(dataset: str, relative: str) -> str:
    """The same file of the same dataset always names the same document (an id, so no paths in it)."""
    return "f-" + hashlib.sha256(f"{dataset}\0{relative}".encode()).hexdigest()[:40]


def ingest(
    settings: Settings,
    files: list[LocalFile],
    dataset: str,
    tenant: str,
    prune: bool = False,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
    timeout: float = 3600.0,
    options: dict | None = None,
) -> IngestSummary:
    """``options``: what create-by-file takes beside the file (``indexing_technique``, say). With
    options, an unchanged file is still sent: only the gateway knows whether they changed too."""
    started = time.monotonic()
    summary = IngestSummary(documents=len(files))
    base = f"{settings.gateway_url}/v1/datasets/{dataset}"
    # An import: its documents take the bulk lane, so whoever edits one document meanwhile waits
    # for no backlog.
    with httpx.Client(timeout=120, headers={"X-Tenant-Id": tenant, "X-Priority": Priority.BULK.value}) as client:
        existing = {s["document_id"]: s for s in _dataset_states(client, base)}
        awaited: dict[str, int] = {}  # document -> the revision to wait for
        for file in files:
            document_id = document_id_for(dataset, file.relative)
            state = existing.get(document_id)
            if (not options and state and state.get("content_hash") == file.sha256()
                    and state["status"] not in RERUN_STATUSES):
                summary.unchanged += 1
                awaited[document_id] = state["revision"]
                continue
            with open(file.path, "rb") as f:
                response = client.post(f"{base}/document/create-by-file", files={"file": (file.path.name, f)},
                                       data={"data": orjson.dumps({**(options or {}), "document_id": document_id}).decode()})
            response.raise_for_status()
            accepted = response.json()
            awaited[document_id] = accepted["revision"]
            if accepted["unchanged"]:
                summary.unchanged += 1
            elif state and state["status"] != "deleted":
                summary.updated += 1
            else:
                summary.created += 1
        if prune:
            for document_id, state in existing.items():
                if document_id not in awaited and state["status"] != "deleted":
                    response = client.delete(f"{base}/documents/{document_id}")
                    response.raise_for_status()
                    awaited[document_id] = int(response.headers["X-Revision"])  # a 204 without a body
                    summary.deleted += 1
        states = _follow(client, base, awaited, on_progress, time.monotonic() + timeout)
    summary.seconds = round(time.monotonic() - started, 2)
    summary.states = states
    reasons = Counter(s.get("error") or "unknown" for s in states if s["status"] == "error")
    summary.completed = sum(1 for s in states if s["status"] == "completed")
    summary.error = sum(reasons.values())
    summary.errors = dict(reasons.most_common())
    summary.segments = sum(s.get("segment_count") or 0 for s in states if s["status"] == "completed")
    return summary


def _dataset_states(client: httpx.Client, base: str) -> list[dict]:
    """Every document of the dataset, deleted ones too; none for a dataset nothing was written to."""
    states: list[dict] = []
    for page in itertools.count(1):
        response = client.get(f"{base}/documents", params={"page": page, "limit": 1000, "deleted": "true"})
        if response.status_code == 404 and page == 1:
            return []
        response.raise_for_status()
        answer = response.json()
        states += answer["data"]
        if not answer["has_more"]:
            return states


def _follow(
    client: httpx.Client, base: str, awaited: dict[str, int], on_progress: Callable[[int, int], None],
    deadline: float,
) -> list[dict]:
    """The documents' states once each has reached its awaited revision and a terminal status (or
    at the deadline). Each poll asks for the documents still pending only, never the dataset's."""
    states: dict[str, dict] = {}
    pending = sorted(awaited)
    while True:
        for start in range(0, len(pending), _STATES_PER_REQUEST):
            response = client.post(f"{base}/documents/states",
                                   json={"document_ids": pending[start:start + _STATES_PER_REQUEST]})
            response.raise_for_status()
            states.update((s["document_id"], s) for s in response.json()["data"])
        pending = [i for i in pending if not (
            i in states and states[i]["revision"] >= awaited[i] and states[i]["status"] in TERMINAL_STATUSES)]
        on_progress(len(awaited) - len(pending), len(awaited))
        if not pending or time.monotonic() > deadline:
            return [states[i] for i in awaited if i in states]
        time.sleep(_POLL_SECONDS)
