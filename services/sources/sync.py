"""One sync of one source: the listing compared with what the last sync kept of each item. An item
whose fingerprint is unchanged is skipped (no fetch, no request, no model call); a new or changed
one is fetched and published; once the listing is complete, the documents of items gone at the
source are deleted. Progress is checkpointed as it goes, in one step with the items' new
fingerprints, so a replica that resumes the run (after a SIGKILL, say) skips what was done and
counts nothing twice."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from services.sources.definitions import Source
from services.sources.kinds import ItemUnavailable, Known, Listed, SourceKind, SourceUnavailable
from services.sources.publishing import ItemPublisher, ItemRefused, document_id_for
from services.sources.store import Run, RunError, SourceStore

log = logging.getLogger(__name__)

# Unchanged items are checkpointed in batches (each publish at once): a resumed run re-lists at
# most this many unchanged items again.
CHECKPOINT_ITEMS = 500
CHECKPOINT_SECONDS = 1.0


class Interrupted(Exception):
    """The service is stopping: the run stays running, checkpointed, for whoever resumes it."""


class SyncRun:
    def __init__(self, store: SourceStore, publisher: ItemPublisher, source: Source, kind: SourceKind, run: Run,
                 keep_lease: Callable[[], None], stopping: Callable[[], bool], errors_kept: int = 50):
        self.store = store
        self.publisher = publisher
        self.source = source
        self.kind = kind
        self.run = run
        self.keep_lease = keep_lease  # raises SourceRemoved once the lease is lost
        self.stopping = stopping
        self.errors_kept = errors_kept
        # Not yet checkpointed: items done, their new records, those forgotten.
        self._done: list[str] = []
        self._seen: dict[str, Known] = {}
        self._forgotten: list[str] = []
        self._flushed = time.monotonic()

    def execute(self) -> Run:
        known = self.store.items(self.source)
        done = self.store.done(self.source)
        listed: set[str] = set(done)
        complete = True
        try:
            for item in self.kind.listing(known):
                if self.stopping():
                    raise Interrupted
                if item.item_id in listed:
                    continue  # listed twice, or done before a resume
                listed.add(item.item_id)
                self.run.listed = len(listed)
                self._take(item, known.get(item.item_id))
        except SourceUnavailable as exc:
            complete = False
            self._error(None, f"listing: {exc}")
            log.warning("source %s: listing incomplete, nothing deleted: %s", self.source.id, exc)
        if complete:
            for item_id in sorted(set(known) - listed):
                if self.stopping():
                    raise Interrupted
                if self.publisher.delete(self.source, known[item_id].document_id):
                    self.run.deleted += 1
                self._forgotten.append(item_id)
                self._checkpoint(now=True)
        self.run.pruned = complete
        self.run.status = "completed" if complete else "error"
        self.run.finished_at = datetime.now(UTC)
        self._checkpoint(now=True)
        return self.run

    def _take(self, item: Listed, known: Known | None) -> None:
        if item.problem is not None:
            self._failed(item, item.problem)
            return
        if known is not None and known.fingerprint == item.fingerprint:
            self.run.unchanged += 1
            if item.memo != known.memo:
                self._seen[item.item_id] = Known(item.fingerprint, known.document_id, item.memo)
            self._done.append(item.item_id)
            self._checkpoint()
            return
        document_id = known.document_id if known is not None else document_id_for(self.source.id, item.item_id)
        try:
            content = item.content or self.kind.fetch(item)
            self.keep_lease()
            outcome = self.publisher.publish(self.source, document_id, item.url, content)
        except (ItemUnavailable, ItemRefused) as exc:
            self._failed(item, str(exc))
            return
        # By what this source knew: an item it never saw is created even if the gateway already
        # had its content (a run resumed after publishing it and before its checkpoint).
        if known is None:
            self.run.created += 1
        elif outcome == "written":
            self.run.updated += 1
        else:
            self.run.unchanged += 1
        self._seen[item.item_id] = Known(item.fingerprint, document_id, item.memo)
        self._done.append(item.item_id)
        self._checkpoint(now=True)

    def _failed(self, item: Listed, reason: str) -> None:
        """Left as the last sync had it: tried again next time, never deleted for it."""
        self._error(item.url, reason)
        self._done.append(item.item_id)
        self._checkpoint(now=True)

    def _error(self, item: str | None, reason: str) -> None:
        if item is not None:
            self.run.failed += 1
        if len(self.run.errors) < self.errors_kept:
            self.run.errors.append(RunError(item=item, reason=reason))

    def _checkpoint(self, now: bool = False) -> None:
        if not now and len(self._done) < CHECKPOINT_ITEMS and time.monotonic() - self._flushed < CHECKPOINT_SECONDS:
            return
        self.keep_lease()
        self.store.checkpoint(self.source, self.run, self._done, self._seen, self._forgotten)
        self._done, self._seen, self._forgotten = [], {}, []
        self._flushed = time.monotonic()
