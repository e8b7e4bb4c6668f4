"""A write is answered only once the state Redis made it durable (services/runtime/durability.py):
a client told its API key, dataset or document exists must find it there after a Redis host
failure. Every successful answer to a method that writes waits for the barrier; the POSTs that
only read (search, estimates, state polls) do not pay for it. A barrier that fails answers 503."""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.runtime.durability import DurabilityBarrier
from services.runtime.errors import as_outage

log = logging.getLogger(__name__)

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# POST routes that read only.
_READ_ONLY_ENDINGS = ("/retrieve", "/hit-testing", "/retrieval", "/document/estimate", "/documents/states")


def writes(method: str, path: str) -> bool:
    return method in _WRITE_METHODS and not path.rstrip("/").endswith(_READ_ONLY_ENDINGS)


class DurableWrites:
    """Pure ASGI: holds a write's answer back until the barrier passed (streams pass untouched)."""

    def __init__(self, app: ASGIApp, barrier: Callable[[], DurabilityBarrier]):
        self.app = app
        self.barrier = barrier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not writes(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return

        refused = False

        async def after_barrier(message: Message) -> None:
            nonlocal refused
            if refused:
                return  # the rest of the original answer, replaced by the 503
            if message["type"] == "http.response.start" and message["status"] < 400:
                refusal = await run_in_threadpool(self._durable)
                if refusal is not None:
                    refused = True
                    await send({"type": "http.response.start", "status": 503,
                                "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1"),
                                            (b"content-length", str(len(refusal)).encode())]})
                    await send({"type": "http.response.body", "body": refusal})
                    return
            await send(message)

        await self.app(scope, receive, after_barrier)

    def _durable(self) -> bytes | None:
        """None once the writes are durable, else the 503's body (in Dify's error shape)."""
        try:
            self.barrier().wait()
            return None
        except Exception as exc:
            if (outage := as_outage(exc)) is None:
                raise
            log.warning("a write is answered 503: %s", outage)
            return orjson.dumps({"code": "service_unavailable", "status": 503,
                                 "message": f"the write may not be durable: {outage}"})

