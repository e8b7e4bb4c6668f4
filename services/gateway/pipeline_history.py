"""The last hour of the pipeline, for the dashboard's charts: a ring buffer of samples each gateway
keeps in memory. Every ``dashboard_sample_seconds`` it keeps what the pipeline snapshot it already
takes for the overview says (each stage's lag and committed records per second, the DLQ), and the
indexing latency (publish -> completed, as the projector computes it into a document's state) of
every document that completed since the previous sample, read from the state-change channels the
projector already publishes for the live stream.

Why this source: the figures are the same ones the overview shows, so a chart and the table never
disagree; sampling needs no Prometheus server (the embedded stack runs none, and each service's
``/metrics`` holds only its own process); latency comes from the states themselves, every
tenant's, not from a sample of them. The cost: a few offset reads per sample and one JSON parse per
state change. The buffer starts empty when the gateway starts, and every replica keeps its own
(the same deployment-wide figures)."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable

import orjson
import redis.asyncio
from starlette.concurrency import run_in_threadpool

from services.runtime.keys import RedisKeys
from services.runtime.redis_client import initialized

log = logging.getLogger(__name__)
KEEP_SECONDS = 3600.0


class PipelineHistory:
    def __init__(self, every_seconds: float, keep_seconds: float = KEEP_SECONDS):
        self.every_seconds = every_seconds
        self._samples: deque[dict] = deque(maxlen=math.ceil(keep_seconds / every_seconds))
        self._latencies: list[float] = []  # of the documents completed since the last sample

    def samples(self) -> list[dict]:
        return list(self._samples)

    def completed(self, latency: float) -> None:
        self._latencies.append(latency)

    def add(self, snapshot: dict) -> None:
        """One sample: the snapshot's stages, and the latencies gathered since the previous one."""
        latencies, self._latencies = sorted(self._latencies), []
        self._samples.append({
            "at": snapshot.get("at", time.time()),
            "stages": {s["stage"]: {"lag": s["lag"], "per_second": s["per_second"]} for s in snapshot["stages"]},
            "dead_letters": snapshot.get("dead_letters"),
            "completed": len(latencies),
            "latency": {"p50": _percentile(latencies, 0.50), "p95": _percentile(latencies, 0.95),
                        "max": latencies[-1]} if latencies else None,
        })

    async def follow(self, snapshot: Callable[[], dict], client: redis.asyncio.Redis, keys: RedisKeys) -> None:
        """Sample until cancelled. A Redis that does not answer costs the latencies of that while,
        never the samples."""
        loop = asyncio.get_running_loop()
        pubsub = client.pubsub()
        try:
            next_sample = loop.time()
            while True:
                while (left := next_sample - loop.time()) > 0:
                    await self._listen(client, pubsub, keys.state_changes_of_every_tenant, left)
                self.add(await run_in_threadpool(snapshot))
                next_sample += self.every_seconds
        finally:
            await pubsub.aclose()

    async def _listen(self, client: redis.asyncio.Redis, pubsub: redis.asyncio.client.PubSub, pattern: str,
                      seconds: float) -> None:
        try:
            if not pubsub.subscribed:  # at first, and after a Redis that did not answer then
                await initialized(client)
                await pubsub.psubscribe(pattern)
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=seconds)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("state changes unavailable for the latency chart: %s", exc)
            await asyncio.sleep(seconds)
            return
        if message is None or b'"status":"completed"' not in message["data"]:
            return  # only a completed state has a latency to chart: the others are not decoded
        state = orjson.loads(message["data"])
        if state.get("status") == "completed" and state.get("indexing_latency") is not None:
            self.completed(float(state["indexing_latency"]))


def _percentile(ordered: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of sorted values."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]
