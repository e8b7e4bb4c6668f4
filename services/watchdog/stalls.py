"""Stuck documents: a non-terminal document whose state has not moved for ``stall_seconds`` is
re-driven from its newest upsert as a new revision; once it has used ``max_attempts`` it ends
in ``error`` with the reason instead. Paused documents wait for their resume, not for us.

What gets stuck this way: a record lost to topic retention during a long outage, a stage that
crashed between two effects, a status lost on the way. The registry's documents not seen finished
yet (``unfinished``: each registered upsert enters it; the projector takes a document out as it
writes its final state, the sweep one it finds finished) are walked rather than the states, so a
document whose state never got written is seen too, and a sweep costs the documents in flight, not
every document there is. A document waiting its turn behind a backlog
that keeps moving is not stuck (see backlog.py).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas import TERMINAL_STATUSES, DocumentDeleted, DocumentState, DocumentStatus, DocumentUpserted, Priority
from services.projector.store import StateStore
from services.runtime.dead_letters import DeadLetters
from services.runtime.producer import Producer
from services.runtime.registry import DocumentRegistry, redrive
from services.runtime.revisions import Revisions
from services.runtime.status import StatusEmitter
from services.watchdog.backlog import Backlog
from services.watchdog.settings import WatchdogSettings
from topics.catalog import DOCUMENTS

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    checked: int = 0
    queued: list[str] = field(default_factory=list)  # idle, but waiting behind a moving backlog
    redriven: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)  # documents by their state's status


class StallSweep:
    def __init__(
        self, registry: DocumentRegistry, states: StateStore, revisions: Revisions, producer: Producer,
        status: StatusEmitter, dead_letters: DeadLetters, backlog: Backlog, settings: WatchdogSettings,
    ):
        self.registry = registry
        self.states = states
        self.revisions = revisions
        self.producer = producer
        self.status = status
        self.dead_letters = dead_letters
        self.backlog = backlog
        self.settings = settings

    def sweep(self, now: datetime, beat: Callable[[], None] = lambda: None,
              lost_before: datetime | None = None) -> SweepReport:
        """Judge every live document not seen finished yet (``beat``: a sign of life per page). With
        ``lost_before`` (a broker restart that lost its records), one that has not moved since then
        is stuck now. ``statuses``: every live document's, from the datasets' counts."""
        report = SweepReport(statuses=self.states.status_totals())
        report.statuses.pop(DocumentStatus.DELETED.value, None)
        self.backlog.new_sweep()
        waiting: set[tuple[str, int]] = set()
        deletes = self.registry.pending_deletes()
        # One registered within the stall time has not stood still for it yet (nor, when a broker
        # lost its records, one registered after that).
        registered_before = now - timedelta(seconds=self.settings.stall_seconds)
        if lost_before is not None:
            registered_before = max(registered_before, lost_before)
        for page in self.registry.unfinished_pages(registered_before.timestamp()):
            beat()
            states = {s.key: s for s in self.states.get_many(u.key for u in page)}
            finished = []
            for upsert in page:
                if (delete := deletes.get(upsert.key)) is not None and delete.revision > upsert.revision:
                    continue  # deleted since: judged by its delete (a re-drive would bring it back)
                state = states.get(upsert.key)
                if state is not None and state.revision >= upsert.revision and state.status in TERMINAL_STATUSES:
                    finished.append((upsert.key, upsert.revision))
                    continue
                report.checked += 1
                if self._check(upsert, state, now, report, lost_before):
                    waiting.add((upsert.key, upsert.revision))
            self.registry.finished(finished)
        for delete in deletes.values():
            report.checked += 1
            self._check_delete(delete, now, report, lost_before)
        self.backlog.keep_only(waiting)
        return report

    def _check_delete(self, delete: DocumentDeleted, now: datetime, report: SweepReport,
                      lost_before: datetime | None) -> None:
        """A delete acknowledged to its client and not carried out yet (its state is not ``deleted``:
        the extractor may have taken it, and its retraction been lost further on): published again
        (the same revision) once it is stuck; settled once done or overtaken by a newer revision."""
        key = delete.key
        state = self.states.get(key)
        done = state is not None and state.revision >= delete.revision and state.status is DocumentStatus.DELETED
        if done or (self.revisions.latest(key) or 0) > delete.revision:
            self.registry.settle_delete(delete)
            return
        last_move = state.updated_at if state is not None and state.revision >= delete.revision else delete.produced_at
        lost = lost_before is not None and last_move < lost_before
        if not lost and now - last_move < timedelta(seconds=self.settings.stall_seconds):
            return
        log.warning("%s: its delete (revision %d) was not carried out; published again", key, delete.revision)
        self.producer.publish_and_wait(DOCUMENTS, delete)
        report.redriven.append(key)

    def _check(self, upsert: DocumentUpserted, state: DocumentState | None, now: datetime, report: SweepReport,
               lost_before: datetime | None = None) -> bool:
        """Judge one document; True while it waits behind a backlog."""
        current = state is not None and state.revision >= upsert.revision
        if current:
            if state.status is DocumentStatus.PAUSED:
                return False
            last_move, where = state.updated_at, f"{state.status.value} at {state.stage.value}"
        else:
            last_move, where = upsert.produced_at, "never seen by any stage"
        lost = lost_before is not None and last_move < lost_before
        if not lost and now - last_move < timedelta(seconds=self.settings.stall_seconds):
            return False
        idle = int((now - last_move).total_seconds())
        key = upsert.key
        # A backlog the broker lost holds nothing to wait for: offsets from before mean nothing now.
        behind = None if lost else self.backlog.waits_behind(
            key, upsert.revision, state.status if current else None, upsert.priority, now
        )
        if behind is not None:
            log.info("%s revision %d: no progress for %ds (%s), %s", key, upsert.revision, idle, where, behind)
            report.queued.append(key)
            return True
        if upsert.attempt >= self.settings.max_attempts:
            reason = f"stuck: no progress for {idle}s ({where}) after {upsert.attempt} attempt(s)"
            log.error("%s revision %d %s", key, upsert.revision, reason)
            self.dead_letters.fail(upsert.identity(), reason, upsert.attempt)
            self.producer.flush()
            report.failed.append(key)
        else:
            again = redrive(self.registry, self.revisions, self.producer, self.status, key, priority=Priority.BULK)
            log.warning("%s revision %d: no progress for %ds (%s); re-driven as revision %d",
                        key, upsert.revision, idle, where, again.revision if again else -1)
            report.redriven.append(key)
        return False
