"""Is a document that has not moved simply waiting its turn? It is while a stage it has yet to pass
(or the projector, which every state waits for) still has records on the document's partition
that were there when the document first looked stuck, and that stage's group keeps moving. The
end offset taken then is a fixed target: under constant load the group still passes it, so a lost
record is found once the backlog ahead of it is through, and a stage that stops moving for the
stall time protects nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas import DocumentStatus, Priority, Stage
from services.runtime.kafka import partition_of
from services.runtime.offsets import OffsetProbe
from services.runtime.settings import Settings
from topics import TopicSpec
from topics.catalog import STAGE_INPUTS, STATUS

# The stages in a document's path, with the topic each reads; a document is at or before the one
# its status names.
_PATH: tuple[tuple[Stage, TopicSpec], ...] = tuple(
    (stage, STAGE_INPUTS[stage]) for stage in (Stage.EXTRACTOR, Stage.SPLITTER, Stage.EMBEDDER, Stage.INDEXER)
)
_FIRST_STAGE = {DocumentStatus.SPLITTING: 1, DocumentStatus.INDEXING: 2}  # anything earlier: 0


@dataclass
class _Seen:
    offset: int
    since: datetime  # when the group was first seen at this offset


class Backlog:
    def __init__(self, settings: Settings, stall: timedelta):
        self.settings = settings
        self.stall = stall
        self.offsets = OffsetProbe(settings)
        self._seen: dict[tuple[str, str, int], _Seen] = {}
        self._targets: dict[tuple[str, int, str, str], int] = {}
        self._committed_now: dict[tuple[str, str, int], int] = {}
        self._ends_now: dict[tuple[str, int], int] = {}

    def new_sweep(self) -> None:
        """Offsets are read once a sweep, however many documents share a partition."""
        self._committed_now.clear()
        self._ends_now.clear()

    def waits_behind(
        self, key: str, revision: int, status: DocumentStatus | None, priority: Priority, now: datetime
    ) -> str | None:
        """What the document waits behind (None: nothing that moves; it is stuck). A bulk document
        also waits while the interactive lane is served; it may be on either lane's topics (lanes
        off put bulk records on the interactive ones)."""
        partition = partition_of(key, self.settings.partitions)
        priorities = [Priority.INTERACTIVE] if priority is Priority.INTERACTIVE else list(Priority)
        lanes = [
            (self.settings.group(stage.value, lane), self.settings.topic(spec.lane(lane).name))
            for stage, spec in _PATH[_FIRST_STAGE.get(status, 0):]
            for lane in priorities
        ] + [(self.settings.group("projector"), self.settings.topic(STATUS.name))]
        for group, topic in lanes:
            committed = self._committed(group, topic, partition, now)
            target_key = (key, revision, group, topic)
            if target_key not in self._targets:
                self._targets[target_key] = self._end(topic, partition, committed)
            target = self._targets[target_key]
            if committed < target and now - self._seen[(group, topic, partition)].since < self.stall:
                return f"{target - committed} records ahead of it at {group}"
        return None

    def keep_only(self, documents: set[tuple[str, int]]) -> None:
        """Forget the targets of documents no longer waiting (done, moved, re-driven)."""
        self._targets = {k: v for k, v in self._targets.items() if (k[0], k[1]) in documents}

    def _committed(self, group: str, topic: str, partition: int, now: datetime) -> int:
        lane = (group, topic, partition)
        if lane not in self._committed_now:
            offset = self.offsets.committed(group, [(topic, partition)]).get((topic, partition), 0)
            self._committed_now[lane] = offset
            seen = self._seen.get(lane)
            if seen is None or seen.offset != offset:
                self._seen[lane] = _Seen(offset, now)
        return self._committed_now[lane]

    def _end(self, topic: str, partition: int, start: int) -> int:
        """The partition's end offset now (``start`` if the broker did not say in time)."""
        if (topic, partition) not in self._ends_now:
            found = self.offsets.watermarks({(topic, partition): start})
            self._ends_now[(topic, partition)] = found.get((topic, partition), (0, start))[1]
        return self._ends_now[(topic, partition)]

    def close(self) -> None:
        self.offsets.close()
