"""Every request counted and timed by its route's template (``/v1/datasets/{dataset_id}/...``, never
the ids, so the series stay few), and ``/metrics`` itself.

``/metrics`` is open to scrapers on every port, with API keys too: it carries deployment-wide
figures only (the dashboard shows every tenant the pipeline's), so no label may hold what a caller
sent, neither an id nor a made-up method. Each scrape also carries the pipeline as the dashboard
reads it from outside the consumer groups: each stage's lag per lane and the DLQ's size."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.services import Clients
from services.runtime.metrics import DEAD_LETTER_RECORDS, HTTP_REQUESTS, HTTP_SECONDS, PIPELINE_LAG

router = APIRouter()
# HTTP's methods; any other a client sends is counted as OTHER (the server accepts any token).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


@router.get("/metrics", include_in_schema=False)
def metrics(s: Clients) -> Response:
    """Prometheus' text format: this gateway process's counters and histograms, and the pipeline's
    lag and DLQ size."""
    publish_pipeline(s.pipeline.snapshot())
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def publish_pipeline(snapshot: dict) -> None:
    """The view's figures as gauges. When the broker did not answer, the lag series go and the DLQ
    size is NaN (unknown), rather than standing still at their last values."""
    PIPELINE_LAG.clear()
    for stage in snapshot["stages"]:
        for lane in stage["lanes"]:
            PIPELINE_LAG.labels(stage["stage"], lane["lane"]).set(lane["lag"])
    dead_letters = snapshot["dead_letters"]
    DEAD_LETTER_RECORDS.set(float("nan") if dead_letters is None else dead_letters)


class RequestMetrics:
    """Pure ASGI, so streamed answers (the dashboard's events) pass through untouched."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless an answer starts

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")  # set by the router that matched
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_SECONDS.labels(method, route).observe(time.perf_counter() - started)
