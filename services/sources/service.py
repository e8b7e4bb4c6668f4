"""The sources process: every ``poll_seconds`` it looks for sources with a run to do (one asked
for, one due by the schedule, or one left running by a replica that died), takes the source's
lease and syncs it. Replicas share the work through the leases; a run left behind resumes from its
checkpoint once its lease has lapsed."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from services.gateway.services import Services
from services.gateway.settings import GatewaySettings
from services.runtime.errors import as_outage
from services.runtime.heartbeat import Heartbeat
from services.runtime.logs import configure_logging, log_context
from services.runtime.metrics import serve_metrics
from services.runtime.redis_client import redis_client
from services.runtime.settings import Settings
from services.sources.addresses import check_public, http_client
from services.sources.definitions import Source, full_config
from services.sources.kinds import SourceKind
from services.sources.publishing import ItemPublisher
from services.sources.registry import open_kind
from services.sources.settings import SourcesSettings
from services.sources.store import Run, SourceRemoved, SourceStore
from services.sources.sync import Interrupted, SyncRun

log = logging.getLogger(__name__)


def due(source: Source, last: Run | None, now: datetime) -> bool:
    """Whether the schedule wants a new run of the source."""
    if source.every is None:
        return False
    if last is None:
        return True
    return not last.running and (last.finished_at or last.started_at) + timedelta(seconds=source.every) <= now


class SourcesService:
    def __init__(self, store: SourceStore, publisher: ItemPublisher, settings: SourcesSettings, heartbeat: Heartbeat,
                 http: httpx.Client, private_networks: bool):
        self.store = store
        self.http = http
        self.private_networks = private_networks
        self.publisher = publisher
        self.settings = settings
        self.heartbeat = heartbeat
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.heartbeat.beat()
            try:
                self.sweep(stop)
            except Exception as exc:  # noqa: BLE001 - an outage is waited out, anything else logged
                if as_outage(exc) is None:
                    log.exception("sources sweep failed")
                else:
                    log.warning("sources sweep waits for a dependency: %s", exc)
            stop.wait(self.settings.poll_seconds)

    def sweep(self, stop: threading.Event) -> None:
        sources = self.store.all()
        last = self.store.last_runs(sources)
        now = datetime.now(UTC)
        for source in sources:
            if stop.is_set():
                return
            run = last[source.id]
            if (run is not None and run.running) or due(source, run, now):
                try:
                    self.sync(source, stop)
                except Exception as exc:  # noqa: BLE001 - one source's trouble must not hold up the others
                    if as_outage(exc) is not None:
                        raise
                    log.exception("source %s: sync failed", source.id)

    def sync(self, source: Source, stop: threading.Event) -> Run | None:
        """Take the source's lease and do its running run (or start the one the schedule wants)."""
        if not self.store.lease(source, self.owner, self.settings.lease_seconds):
            return None  # another replica has it
        try:
            with log_context(tenant=source.tenant_id, source=source.id):
                last = self.store.last_runs([source])[source.id]
                if not ((last is not None and last.running) or due(source, last, datetime.now(UTC))):
                    return None  # another replica finished it between the sweep's look and the lease
                run, started = self.store.start_run(source, "schedule")
                log.info("source %s (%s): %s run %s", source.id, source.kind, "starting" if started else "resuming",
                         run.id)
                try:
                    config = full_config(source, self.store.secrets(source))
                    if not self.private_networks:
                        for url in config.addresses():
                            check_public(url)
                    kind = open_kind(source.kind, config, self.settings, self.http)
                    return self._execute(source, kind, run, stop)
                except Exception as exc:
                    if as_outage(exc) is not None or isinstance(exc, SourceRemoved):
                        raise  # waited out: the run stays running, resumed from its checkpoint
                    # Anything else would fail the same way again: the run ends, saying why.
                    self.store.fail_run(source, run, f"{type(exc).__name__}: {exc}")
                    raise
        except SourceRemoved as exc:
            log.info("%s", exc)
            return None
        finally:
            self.store.release(source, self.owner)

    def _execute(self, source: Source, kind: SourceKind, run: Run, stop: threading.Event) -> Run | None:
        def keep_lease() -> None:
            if not self.store.renew(source, self.owner, self.settings.lease_seconds):
                raise SourceRemoved(f"source {source.id}: lease lost, run {run.id} left to its new holder")
            if not self.store.exists(source):  # removed (or its dataset deleted): publish nothing more
                raise SourceRemoved(f"source {source.id} was removed during run {run.id}")
            self.heartbeat.beat()

        sync = SyncRun(self.store, self.publisher, source, kind, run, keep_lease, stop.is_set,
                       self.settings.errors_kept)
        try:
            finished = sync.execute()
        except Interrupted:
            log.info("source %s: stopping; run %s left at its checkpoint", source.id, run.id)
            return None
        log.info("source %s: run %s %s: %d created, %d updated, %d unchanged, %d deleted, %d failed", source.id,
                 run.id, finished.status, finished.created, finished.updated, finished.unchanged, finished.deleted,
                 finished.failed)
        return finished


def main() -> None:
    settings = Settings()
    configure_logging(settings, "sources")
    serve_metrics(settings)
    sources = SourcesSettings()
    private_networks = sources.allows_private_networks(settings.auth)
    client = redis_client(settings)
    service = SourcesService(
        SourceStore(client, settings.keys, sources.runs_kept),
        ItemPublisher(Services(settings, GatewaySettings())),
        sources,
        Heartbeat(client, settings.keys, "sources"),
        http_client(sources.http_timeout_seconds, sources.user_agent, private_networks),
        private_networks,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    service.run(stop)
    service.heartbeat.stop()
