"""The watchdog process: the stall sweep every ``sweep_interval_seconds``, the reconciler every
``reconcile_interval_seconds``. Both are idempotent, so a second replica only repeats work."""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis

from deploy.supervisor import SERVICES
from schemas import DocumentStatus, Stage
from schemas.envelope import utc_now
from services.projector.store import StateStore
from services.runtime.blobs import BlobStore
from services.runtime.dead_letters import DeadLetters
from services.runtime.elasticsearch_client import elasticsearch_client
from services.runtime.errors import as_outage
from services.runtime.heartbeat import Heartbeat, last_beats, processes_alive
from services.runtime.keys import RedisKeys
from services.runtime.logs import configure_logging
from services.runtime.metrics import (
    DOCUMENTS,
    DOCUMENTS_STALLED,
    GIVEN_UP,
    LIVE_PROCESSES,
    REDRIVES,
    STALE_CHUNKS,
    serve_metrics,
)
from services.runtime.producer import Producer
from services.runtime.redis_client import redis_client
from services.runtime.registry import DocumentRegistry
from services.runtime.revisions import Revisions
from services.runtime.settings import Settings
from services.runtime.status import StatusEmitter
from services.watchdog.backlog import Backlog
from services.watchdog.dead_letter_replay import DeadLetterReplay
from services.watchdog.reconcile import Reconciler
from services.watchdog.restarts import RECORDS_LOST, WRITES_LOST, Restart, Restarts
from services.watchdog.settings import WatchdogSettings
from services.watchdog.stalls import StallSweep
from topics.catalog import EXTRACTED

log = logging.getLogger(__name__)
# The services that stamp heartbeats: every one a deployment runs but the gateway (it answers
# probes instead).
HEARTBEATING = tuple(name for name in SERVICES if name != Stage.GATEWAY.value)


@dataclass
class Watchdog:
    sweep: StallSweep
    reconciler: Reconciler
    dead_letters: DeadLetterReplay  # run on demand (`indexflow dlq replay`), never on a schedule
    restarts: Restarts
    heartbeat: Heartbeat
    settings: WatchdogSettings
    redis: redis.Redis
    keys: RedisKeys
    producer: Producer

    def close(self) -> None:
        self.sweep.backlog.close()
        self.producer.flush()

    def projector_alive(self) -> bool:
        silence = last_beats(self.redis, self.keys).get("projector")
        return silence is not None and silence <= self.settings.projector_silence_seconds

    def run(self, stop: threading.Event) -> None:
        next_sweep = next_reconcile = time.monotonic()
        while not stop.is_set():
            self.heartbeat.beat()
            self._guarded("liveness report", self._report_liveness)
            now = time.monotonic()
            if now >= next_sweep:
                self._guarded("stall sweep", self._sweep)
                next_sweep = now + self.settings.sweep_interval_seconds
            if now >= next_reconcile:
                self._guarded("reconcile", self._reconcile)
                next_reconcile = now + self.settings.reconcile_interval_seconds
            self._guarded("recovery from a server restart", self._recover_from_restarts)
            stop.wait(1.0)

    def _recover_from_restarts(self) -> None:
        """Look for what a restarted server lost as soon as it is back: the documents whose records
        an empty broker dropped (re-driven once the grace has passed), the chunks or states a
        restarted Elasticsearch or Redis lost (the reconciler's audit, with repair)."""
        for restart in self.restarts.pending():
            if restart.server == RECORDS_LOST:
                lost_before = datetime.fromtimestamp(restart.at, UTC)
                if utc_now() - lost_before < timedelta(seconds=self.settings.restart_grace_seconds):
                    continue
                if not self._sweep(lost_before):
                    continue
            elif restart.server in WRITES_LOST:
                self._reconcile()
            log.warning("recovered from the restart of %s at %s", restart.server, _when(restart))
            self.restarts.handled(restart)

    def _sweep(self, lost_before: datetime | None = None) -> bool:
        if not self.projector_alive():
            log.warning("the projector shows no life: states are not current, nothing is judged stuck")
            return False
        report = self.sweep.sweep(utc_now(), self.heartbeat.beat, lost_before)
        REDRIVES.labels("stalled").inc(len(report.redriven))
        GIVEN_UP.inc(len(report.failed))
        for status in DocumentStatus:
            DOCUMENTS.labels(status.value).set(report.statuses[status.value])
        for verdict, documents in (("queued", report.queued), ("redriven", report.redriven), ("failed", report.failed)):
            DOCUMENTS_STALLED.labels(verdict).set(len(documents))
        if report.redriven or report.failed:
            log.warning("stall sweep: %d checked, re-driven %s, failed %s",
                        report.checked, report.redriven, report.failed)
        return True

    def _report_liveness(self) -> None:
        """Every heartbeating service's live processes, 0 included: a stopped service is a series
        at 0 for an alert to see, not a series gone."""
        alive = processes_alive(self.redis, self.keys, self.settings.heartbeat_silence_seconds)
        for service in HEARTBEATING:
            LIVE_PROCESSES.labels(service).set(alive.get(service, 0))

    def _reconcile(self) -> None:
        report = self.reconciler.run(beat=self.heartbeat.beat)
        REDRIVES.labels("reconciled").inc(len(report.missing))
        STALE_CHUNKS.inc(report.stale_chunks)
        log.info("reconcile: %d audited, %d missing, %d stale chunks", report.audited, len(report.missing),
                 report.stale_chunks)

    @staticmethod
    def _guarded(what: str, work) -> None:
        try:
            work()
        except Exception as exc:  # noqa: BLE001 - the next round tries again
            if as_outage(exc) is None:
                log.exception("%s failed", what)
            else:
                log.warning("%s skipped: %s", what, exc)


def _when(restart: Restart) -> str:
    return datetime.fromtimestamp(restart.at, UTC).isoformat(timespec="seconds")


def build(settings: Settings, watchdog_settings: WatchdogSettings | None = None) -> Watchdog:
    """The composition root: every client made once and handed in."""
    watchdog_settings = watchdog_settings or WatchdogSettings()
    client = redis_client(settings)
    keys = settings.keys
    producer = Producer(settings)
    status = StatusEmitter(producer, Stage.WATCHDOG)
    revisions = Revisions(client, keys)
    blobs = BlobStore(settings)
    registry = DocumentRegistry(client, keys, blobs)
    states = StateStore(client, keys)
    dead_letters = DeadLetters(producer, status, revisions, retractions_to=EXTRACTED, blobs=blobs)
    return Watchdog(
        sweep=StallSweep(registry, states, revisions, producer, status, dead_letters,
                         Backlog(settings, timedelta(seconds=watchdog_settings.stall_seconds)), watchdog_settings),
        reconciler=Reconciler(elasticsearch_client(settings), client, keys, settings.topic_prefix, states, registry,
                              revisions, producer, status),
        dead_letters=DeadLetterReplay(client, keys, registry, revisions, states, producer, status, blobs),
        restarts=Restarts(client, keys),
        heartbeat=Heartbeat(client, keys, Stage.WATCHDOG.value),
        settings=watchdog_settings,
        redis=client,
        keys=keys,
        producer=producer,
    )


def main() -> None:
    settings = Settings()
    configure_logging(settings, Stage.WATCHDOG.value)
    serve_metrics(settings)
    watchdog = build(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info("watchdog: stall after %.0fs, %d attempts", watchdog.settings.stall_seconds,
             watchdog.settings.max_attempts)
    watchdog.run(stop)
    watchdog.heartbeat.stop()
    watchdog.close()
