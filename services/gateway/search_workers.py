"""Searches answered in worker processes of their own, at a lower CPU priority than the gateway.

A search is CPU-bound Python: its body's JSON and validation (a metadata filter may carry tens of
thousands of values), every document's metadata checked against the condition, fusion and the
answer's shape. In the gateway's process one tenant's searches would hold the GIL that every
tenant's requests share, and take the CPU the cheap requests need. Here the gateway only reads the
body's bytes and hands them over: a search costs its own worker's CPU, which the operating system
gives to the gateway first (``search_niceness``), and the workers are handed out to the tenants
with searches waiting in turn, so one tenant's queue never holds up another's search.

A job is a module-level function ``job(services, *args)`` returning the answer's JSON-able
content (or an ``Answer`` of its own shape); the errors a route would raise come back in the API's
error shape."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from typing import Any

import orjson
from fastapi.responses import Response
from pydantic import ValidationError

from services.gateway import errors
from services.gateway.errors import ApiError
from services.gateway.settings import GatewaySettings
from services.runtime.logs import configure_logging
from services.runtime.metrics import SEARCH_SECONDS, SERVER_WAIT
from services.runtime.priority import lower_priority
from services.runtime.settings import Settings

log = logging.getLogger(__name__)

_services: Any = None  # in a worker: its own clients, built once


def _start_worker(settings: Settings, gateway: GatewaySettings, gateway_pid: int) -> None:
    global _services
    from services.gateway.services import Services  # the worker's clients; the module is the gateway's too

    lower_priority(gateway.search_niceness)
    configure_logging(settings, "gateway-search")
    threading.Thread(target=_end_with, args=(gateway_pid,), daemon=True).start()
    _services = Services(settings, gateway)


def _end_with(gateway_pid: int) -> None:
    """A worker outlives a gateway killed outright (its queue never closes): it ends once it sees
    that it has another parent."""
    while os.getppid() == gateway_pid:
        time.sleep(1)
    os._exit(0)


# The metrics a search observes in its worker, observed again in the gateway: only the gateway's
# /metrics is scraped. Each is a histogram or summary observed once or a few times per search.
_RELAYED = {metric._name: metric for metric in (SEARCH_SECONDS, SERVER_WAIT)}
Observed = tuple[str, tuple[str, ...], int, float]  # metric, label values, count, sum


@dataclass(frozen=True)
class Answer:
    status: int
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)
    observed: list[Observed] = field(default_factory=list)

    def response(self) -> Response:
        for name, labels, count, total in self.observed:
            metric = _RELAYED[name].labels(*labels)
            for _ in range(count):  # the count and the sum exact; a histogram's bucket by their mean
                metric.observe(total / count)
        return Response(self.content, self.status, self.headers, media_type="application/json")


def _totals() -> dict[tuple[str, tuple[str, ...]], tuple[float, float]]:
    totals: dict[tuple[str, tuple[str, ...]], list[float]] = {}
    for name, metric in _RELAYED.items():
        for family in metric.collect():
            for sample in family.samples:
                if sample.name.endswith(("_count", "_sum")):
                    key = (name, tuple(sample.labels[label] for label in metric._labelnames))
                    totals.setdefault(key, [0.0, 0.0])[sample.name.endswith("_sum")] = sample.value
    return {key: (count, total) for key, (count, total) in totals.items()}


def _run(job: Callable[..., Any], args: tuple) -> Answer:
    before = _totals()
    answer = _answer(job, args)
    observed = [(name, labels, int(count - before.get((name, labels), (0, 0))[0]),
                 total - before.get((name, labels), (0, 0))[1])
                for (name, labels), (count, total) in _totals().items()]
    return replace(answer, observed=[o for o in observed if o[2] > 0])


def _answer(job: Callable[..., Any], args: tuple) -> Answer:
    try:
        answer = job(_services, *args)
        return answer if isinstance(answer, Answer) else Answer(200, orjson.dumps(answer))
    except ApiError as exc:
        status, content, headers = errors.api_error(exc)
    except ValidationError as exc:  # as FastAPI reports a body it could not validate
        status, content, headers = errors.invalid_request(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False, include_context=False)])
    except Exception as exc:  # noqa: BLE001 - answered here: an exception may not cross processes intact
        if (shaped := errors.outage(exc)) is None:
            log.exception("a search failed")
            shaped = (500, errors.error_content(500, "Internal Server Error"), None)
        status, content, headers = shaped
    return Answer(status, orjson.dumps(content), headers or {})


class SearchWorkers:
    def __init__(self, settings: Settings, gateway: GatewaySettings):
        self._settings = settings
        self._gateway = gateway
        self._pool: ProcessPoolExecutor | None = None
        self._idle = gateway.search_workers
        self._waiting: OrderedDict[str, deque[asyncio.Future]] = OrderedDict()  # tenant -> its searches in line

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self._gateway.search_workers, mp_context=get_context("spawn"),
                initializer=_start_worker, initargs=(self._settings, self._gateway, os.getpid()))
        return self._pool

    def start(self) -> None:
        """Start the workers now (each imports the gateway and connects), not on the first search."""
        pool = self._executor()
        for _ in range(self._gateway.search_workers):
            pool.submit(os.getpid)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def answer(self, tenant: str, job: Callable[..., Any], *args: Any) -> Response:
        await self._turn(tenant)
        try:
            return (await self._submit(job, args)).response()
        finally:
            self._next_turn()

    async def _submit(self, job: Callable[..., Any], args: tuple) -> Answer:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor(), _run, job, args)
        except BrokenProcessPool:  # a worker died (killed, out of memory): the next search gets new ones
            log.error("a search worker died; starting new ones")
            self.close()
            return Answer(503, orjson.dumps(errors.error_content(
                503, "a search worker stopped unexpectedly; retry")), {"Retry-After": "1"})

    async def _turn(self, tenant: str) -> None:
        if self._idle > 0 and not self._waiting:
            self._idle -= 1
            return
        turn = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(tenant, deque()).append(turn)
        try:
            await turn
        except asyncio.CancelledError:  # the caller left: give the worker on if it was handed over
            if turn.done() and not turn.cancelled():
                self._next_turn()
            else:
                self._forget(tenant, turn)
            raise

    def _next_turn(self) -> None:
        """Hand the freed worker to the next tenant in line (round robin), or keep it idle."""
        while self._waiting:
            tenant, line = next(iter(self._waiting.items()))
            turn = line.popleft()
            if line:
                self._waiting.move_to_end(tenant)
            else:
                del self._waiting[tenant]
            if not turn.done():
                turn.set_result(None)
                return
        self._idle += 1

    def _forget(self, tenant: str, turn: asyncio.Future) -> None:
        line = self._waiting.get(tenant)
        if line is not None and turn in line:
            line.remove(turn)
            if not line:
                del self._waiting[tenant]
