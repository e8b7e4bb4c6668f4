"""Estimates wait here, not in the gateway's worker threads: a bounded queue per tenant, served by a
few workers of its own (each with a sandbox of its own) that take the tenants with estimates
waiting in turn, so one tenant's queue never delays another's turn by more than one estimate per
worker. A caller that stops waiting (its client left, its time ran out) has its estimate dropped
from the queue, or its extraction killed if it is running."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.estimate.estimator import Estimate, Estimator

Work = Callable[[Estimator, threading.Event], Estimate]


class QueueFull(Exception):
    """The queue holds as many estimates as it may."""


class TenantBusy(Exception):
    """The tenant has as many estimates queued or running as it may."""


class Abandoned(Exception):
    """The caller's client left before the answer."""


class TimedOut(Exception):
    def __init__(self, running: bool):
        super().__init__("running" if running else "waiting")
        self.running = running  # past its time running (else: waiting in the queue)


@dataclass(eq=False)
class Job:
    tenant_id: str
    work: Work
    answer: asyncio.Future
    loop: asyncio.AbstractEventLoop
    stop: threading.Event = field(default_factory=threading.Event)
    started: float | None = None  # the loop's time its work began; None while queued

    def settle(self, outcome: Any, failed: bool) -> None:
        def settle_on_loop() -> None:
            if not self.answer.done():
                (self.answer.set_exception if failed else self.answer.set_result)(outcome)
        self.loop.call_soon_threadsafe(settle_on_loop)


class EstimateQueue:
    def __init__(self, make_estimator: Callable[[], Estimator], workers: int, capacity: int):
        self._make_estimator = make_estimator
        self._workers = workers
        self._capacity = capacity
        self._lock = threading.Condition()
        self._waiting: dict[str, deque[Job]] = {}  # tenant -> its queued jobs, oldest first
        self._turns: deque[str] = deque()  # tenants with jobs waiting, the next to be served first
        self.held: Counter[str] = Counter()  # tenant -> its estimates queued or running
        self._started = False

    def no_room(self, tenant_id: str, tenant_limit: int) -> TenantBusy | QueueFull | None:
        """Why an estimate of the tenant would be refused now (None: it would be queued)."""
        if self.held[tenant_id] >= tenant_limit:
            return TenantBusy(tenant_id)
        if sum(len(jobs) for jobs in self._waiting.values()) >= self._capacity:
            return QueueFull()
        return None

    def submit(self, tenant_id: str, tenant_limit: int, work: Work) -> Job:
        """Queue ``work`` for the tenant (QueueFull, TenantBusy when there is no room)."""
        loop = asyncio.get_running_loop()
        job = Job(tenant_id, work, loop.create_future(), loop)
        with self._lock:
            if (refusal := self.no_room(tenant_id, tenant_limit)) is not None:
                raise refusal
            if not self._started:
                for number in range(self._workers):
                    threading.Thread(target=self._serve, name=f"estimate-{number}", daemon=True).start()
                self._started = True
            self.held[tenant_id] += 1
            if tenant_id not in self._waiting:
                self._waiting[tenant_id] = deque()
                self._turns.append(tenant_id)
            self._waiting[tenant_id].append(job)
            self._lock.notify()
        return job

    async def answer(self, job: Job, client_gone: asyncio.Future, seconds: float) -> Estimate:
        """The job's estimate, waited for at most ``seconds`` in the queue and ``seconds`` more
        once running; the job is dropped when the time is up (TimedOut) or ``client_gone`` is
        (Abandoned)."""
        loop = job.loop
        queued_until = loop.time() + seconds
        try:
            while True:
                until = queued_until if job.started is None else job.started + seconds
                done, _ = await asyncio.wait({job.answer, client_gone}, timeout=max(0.0, min(until - loop.time(), 0.5)),
                                             return_when=asyncio.FIRST_COMPLETED)
                if job.answer in done:
                    return job.answer.result()
                if client_gone in done:
                    raise Abandoned()
                if loop.time() >= (queued_until if job.started is None else job.started + seconds):
                    raise TimedOut(running=job.started is not None)
        finally:
            if not job.answer.done():
                self.drop(job)

    def drop(self, job: Job) -> None:
        """The caller no longer waits: the job leaves the queue, or its running work is stopped.
        On the caller's loop."""
        job.stop.set()
        job.answer.cancel()  # what the work still ends with is nobody's
        with self._lock:
            jobs = self._waiting.get(job.tenant_id)
            if jobs is not None and job in jobs:
                jobs.remove(job)
                self._forget_if_idle(job.tenant_id)
                self._release(job.tenant_id)

    def _serve(self) -> None:
        estimator = self._make_estimator()
        while True:
            with self._lock:
                while not self._turns:
                    self._lock.wait()
                tenant_id = self._turns.popleft()
                job = self._waiting[tenant_id].popleft()
                if self._waiting[tenant_id]:
                    self._turns.append(tenant_id)  # its next job after the other tenants' turns
                else:
                    del self._waiting[tenant_id]
                job.loop.call_soon_threadsafe(_mark_started, job)
            if job.stop.is_set():  # dropped as it was taken
                with self._lock:
                    self._release(tenant_id)
                continue
            try:
                job.settle(job.work(estimator, job.stop), failed=False)
            except Exception as exc:  # noqa: BLE001 - handed to the caller, whose answer says it
                job.settle(exc, failed=True)
            finally:
                with self._lock:
                    self._release(tenant_id)

    def _forget_if_idle(self, tenant_id: str) -> None:
        if not self._waiting[tenant_id]:
            del self._waiting[tenant_id]
            self._turns.remove(tenant_id)

    def _release(self, tenant_id: str) -> None:
        self.held[tenant_id] -= 1
        if self.held[tenant_id] <= 0:
            del self.held[tenant_id]


def _mark_started(job: Job) -> None:
    job.started = job.loop.time()
