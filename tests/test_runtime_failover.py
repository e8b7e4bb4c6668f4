"""Two worker processes in one group share a 6-partition topic; one is SIGKILLed mid-stream.

Asserts at-least-once with exact resumption: nothing is lost, every committed offset had its
output acknowledged first, and the survivor resumes each orphaned partition exactly at the
committed offset."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from services.runtime.kafka import admin_client
from services.runtime.settings import Settings
from tests.support.echo_service import ECHO_IN, ECHO_LANED_IN, ECHO_OUT, Echo
from tests.support.kafka import committed, produce, read_topic
from schemas import Priority
from topics import apply_topics

ROOT = Path(__file__).resolve().parents[1]
N = 600


def start_worker(name: str, delay: float, log_dir: Path, laned: bool = False) -> subprocess.Popen:
    log = open(log_dir / f"echo-{name}.log", "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.echo_service"],
        cwd=ROOT,
        env={**os.environ, "ECHO_WORKER": name, "ECHO_DELAY": str(delay), "ECHO_LANED": "1" if laned else "0"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def outputs(settings: Settings, until, timeout: float = 60.0) -> list[dict]:
    """Echo outputs, read until ``until(outputs)`` holds."""
    messages = read_topic(
        settings,
        settings.topic(ECHO_OUT.name),
        until=lambda ms: until([orjson.loads(m.value()) for m in ms]),
        timeout=timeout,
    )
    return [orjson.loads(m.value()) for m in messages]


def handled(outs: list[dict], worker: str | None = None) -> set[tuple[int, int]]:
    return {(o["partition"], o["offset"]) for o in outs if worker in (None, o["worker"])}


@pytest.fixture
def echo_topics(settings: Settings) -> Settings:
    assert apply_topics(admin_client(settings), [ECHO_IN, ECHO_OUT], settings).ok
    return settings


def test_sigkill_mid_stream_loses_nothing_and_resumes_at_the_commit(echo_topics: Settings, tmp_path: Path):
    settings = echo_topics
    topic_in = settings.topic(ECHO_IN.name)
    placed = produce(settings, topic_in, [(f"doc-{i % 97}".encode(), b"x") for i in range(N)])
    expected = set(placed)
    assert len({p for p, _ in placed}) == 6, "keys should spread over all partitions"

    a = start_worker("a", 0.02, tmp_path)
    b = start_worker("b", 0.02, tmp_path)
    try:
        # Wait until both workers have produced, then kill one with no chance to clean up.
        seen = outputs(settings, until=lambda outs: {o["worker"] for o in outs} >= {"a", "b"})
        assert {o["worker"] for o in seen} >= {"a", "b"}, "both workers should get partitions"
        a.send_signal(signal.SIGKILL)
        a.wait()
        killed_at = time.time()
        group = f"{settings.topic_prefix}{Echo.stage.value}"
        at_kill = committed(settings, group, topic_in, 6)

        everything = outputs(settings, until=lambda outs: handled(outs) >= expected)
        missing = expected - handled(everything)
        assert not missing, f"{len(missing)} records never processed"

        before_kill = [o for o in everything if o["at"] < killed_at]
        after_kill = [o for o in everything if o["at"] >= killed_at]
        processed_before = handled(before_kill)
        a_partitions = {o["partition"] for o in before_kill if o["worker"] == "a"}
        assert a_partitions, "worker a processed nothing before it was killed"
        # Partitions only a had: their commits are frozen from the kill until b takes them over
        # (a session timeout later), so the snapshot shows exactly what a committed.
        orphaned = a_partitions - {o["partition"] for o in before_kill if o["worker"] == "b"}
        assert orphaned, "expected partitions that only worker a had handled"
        for partition in orphaned:
            # Committed implies processed and acknowledged ...
            assert all((partition, o) in processed_before for o in range(max(at_kill[partition], 0))), partition
            # ... and the survivor resumes exactly at the committed offset.
            resumed = min(o["offset"] for o in after_kill if o["partition"] == partition)
            assert resumed == max(at_kill[partition], 0), (partition, resumed, at_kill[partition])

        # A clean stop commits everything processed ...
        b.send_signal(signal.SIGTERM)
        assert b.wait(timeout=30) == 0
        ends = defaultdict(int)
        for partition, offset in placed:
            ends[partition] = max(ends[partition], offset + 1)
        assert committed(settings, group, topic_in, 6) == dict(ends)

        # ... so a restarted worker handles exactly the new records, none of the old ones.
        more = set(produce(settings, topic_in, [(f"doc-{i}".encode(), b"y") for i in range(60)]))
        c = start_worker("c", 0.0, tmp_path)
        try:
            final = outputs(settings, until=lambda outs: handled(outs, "c") >= more)
        finally:
            c.send_signal(signal.SIGTERM)
            c.wait(timeout=30)
        by_c = [(o["partition"], o["offset"]) for o in final if o["worker"] == "c"]
        assert sorted(by_c) == sorted(more), "the restarted worker redid old records or missed new ones"
    finally:
        for worker in (a, b):
            if worker.poll() is None:
                worker.kill()
                worker.wait()


def test_two_lanes_two_workers_and_a_sigkill_lose_nothing(settings: Settings, tmp_path: Path):
    """Each lane is a group of its own, with its own rebalances and commits: records of both lanes,
    several tenants each, all handled when one of two workers is killed mid-stream."""
    lanes = [ECHO_LANED_IN.lane(Priority.INTERACTIVE), ECHO_LANED_IN.lane(Priority.BULK)]
    assert apply_topics(admin_client(settings), [*lanes, ECHO_OUT], settings).ok
    expected = set()
    for spec in lanes:
        topic = settings.topic(spec.name)
        placed = produce(settings, topic, [(f"tenant-{i % 5}/doc-{i % 97}".encode(), b"x") for i in range(N // 2)])
        expected |= {(topic, p, o) for p, o in placed}

    def seen(outs: list[dict]) -> set[tuple[str, int, int]]:
        return {(o["topic"], o["partition"], o["offset"]) for o in outs}

    a = start_worker("a", 0.02, tmp_path, laned=True)
    b = start_worker("b", 0.02, tmp_path, laned=True)
    try:
        outputs(settings, until=lambda outs: {o["worker"] for o in outs} >= {"a", "b"})
        a.send_signal(signal.SIGKILL)
        a.wait()
        everything = outputs(settings, until=lambda outs: seen(outs) >= expected)
        missing = expected - seen(everything)
        assert not missing, f"{len(missing)} records never processed"
    finally:
        for worker in (a, b):
            if worker.poll() is None:
                worker.kill()
                worker.wait()
