"""The pipeline as an operator sees it: for each stage and lane, how far its consumer group has
committed, how much waits (lag: the end offset a fetch reports minus the committed offset) and
how fast it moves (committed records per second over the last half minute); how many replicas
of each service show life; how many records the DLQ holds. Read from outside the groups, so a
stage that is down still shows its backlog growing."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass

import redis

from schemas import Priority
from services.runtime.heartbeat import last_beats, processes_alive
from services.runtime.offsets import OffsetProbe, Partition
from services.runtime.settings import Settings
from topics.catalog import DLQ, STAGE_INPUTS

log = logging.getLogger(__name__)
# A snapshot is reused for this long (every dashboard shares it), and rates span up to RATE_WINDOW.
FRESH_SECONDS = 2.0
RATE_WINDOW_SECONDS = 30.0
ALIVE_WITHIN_SECONDS = 30.0


@dataclass(frozen=True)
class LaneView:
    lane: str
    group: str
    topic: str
    committed: int
    end: int
    lag: int
    per_second: float | None  # None until two snapshots are far enough apart


@dataclass(frozen=True)
class StageView:
    stage: str
    lanes: list[LaneView]
    lag: int
    per_second: float | None
    replicas: int
    seconds_since_heartbeat: float | None


class PipelineView:
    def __init__(self, settings: Settings, client: redis.Redis, probe: OffsetProbe | None = None):
        self.settings = settings
        self.redis = client
        self.probe = probe or OffsetProbe(settings)
        self._lock = threading.Lock()
        self._snapshot: dict | None = None
        self._taken = 0.0
        self._history: deque[tuple[float, dict[str, int]]] = deque()  # (time, group|topic -> committed)

    def snapshot(self) -> dict:
        """The current view, at most FRESH_SECONDS old. A broker or Redis that does not answer is
        part of the view (``error``), not a failure of the page showing it."""
        with self._lock:
            if self._snapshot is None or time.monotonic() - self._taken >= FRESH_SECONDS:
                try:
                    self._snapshot = self._take()
                except Exception as exc:  # noqa: BLE001 - shown to the operator as it is
                    log.warning("pipeline view unavailable: %s", exc)
                    self._snapshot = {"stages": [], "dead_letters": None, "services": {}, "at": time.time(),
                                      "error": f"{type(exc).__name__}: {exc}"}
                self._taken = time.monotonic()
            return self._snapshot

    def _lanes(self) -> list[tuple[str, Priority, str, str]]:
        """(stage, lane, group, topic) of every stage's consumer groups."""
        s = self.settings
        return [
            (stage.value, lane, s.group(stage.value, lane), s.topic(spec.lane(lane).name))
            for stage, spec in STAGE_INPUTS.items()
            for lane in (Priority.INTERACTIVE, Priority.BULK)
            if spec.laned or lane is Priority.INTERACTIVE
        ]

    def _take(self) -> dict:
        now = time.monotonic()
        partitions = range(self.settings.partitions)
        lanes = self._lanes()
        committed: dict[tuple[str, Partition], int] = {}
        for _, _, group, topic in lanes:
            for partition, offset in self.probe.committed(group, [(topic, p) for p in partitions]).items():
                committed[(group, partition)] = offset
        dlq = self.settings.topic(DLQ.name)
        # Fetch each partition from the earliest offset a group stands at: a record or the end.
        starts: dict[Partition, int] = {(dlq, p): 0 for p in partitions}
        for (_, partition), offset in committed.items():
            starts[partition] = min(starts.get(partition, offset), offset)
        marks = self.probe.watermarks(starts)
        totals = {f"{group}|{topic}": sum(committed.get((group, (topic, p)), 0) for p in partitions)
                  for _, _, group, topic in lanes}
        rates = self._rates(now, totals)
        beats = last_beats(self.redis, self.settings.keys)
        alive = processes_alive(self.redis, self.settings.keys, ALIVE_WITHIN_SECONDS)
        stages: dict[str, list[LaneView]] = {}
        for stage, lane, group, topic in lanes:
            end = sum(marks.get((topic, p), (0, 0))[1] for p in partitions)
            done = totals[f"{group}|{topic}"]
            stages.setdefault(stage, []).append(
                LaneView(lane.value, group, topic, done, end, max(0, end - done), rates.get(f"{group}|{topic}")))
        views = [
            StageView(stage, views, sum(v.lag for v in views), _sum_rates(v.per_second for v in views),
                      alive.get(stage, 0), beats.get(stage))
            for stage, views in stages.items()
        ]
        dead_letters = sum(high - low for (topic, _), (low, high) in marks.items() if topic == dlq)
        return {
            "stages": [asdict(v) for v in views],
            "dead_letters": dead_letters,
            "services": {name: {"replicas": alive.get(name, 0), "seconds_since_heartbeat": age}
                         for name, age in sorted(beats.items())},
            "at": time.time(),
        }

    def _rates(self, now: float, totals: dict[str, int]) -> dict[str, float]:
        """Committed records per second since the oldest snapshot within the window."""
        self._history.append((now, totals))
        while self._history and now - self._history[0][0] > RATE_WINDOW_SECONDS:
            self._history.popleft()
        then, before = self._history[0]
        if now - then < FRESH_SECONDS:
            return {}
        return {name: round(max(0, total - before.get(name, total)) / (now - then), 2)
                for name, total in totals.items()}

    def close(self) -> None:
        self.probe.close()


def _sum_rates(rates) -> float | None:
    known = [r for r in rates if r is not None]
    return round(sum(known), 2) if known else None
