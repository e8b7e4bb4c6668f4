"""A lane's records read ahead of their processing, served round-robin across tenants, so one
tenant's import does not hold another's until it ends: each batch takes a record of every tenant
in turn (a tenant's own records in their order, so a document's stay in order). A tenant whose
records arrive after a batch was taken is a newcomer the batch in hand may give way to
(services/runtime/loop.py), instead of making it wait for the whole batch.

Records finish out of partition order, so a partition's committed offset is its earliest record
not yet finished; a crash replays from there, and the effects of the records finished past it are
idempotent (the same as any replay)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from confluent_kafka import Message

Partition = tuple[str, int]
Offsets = dict[Partition, int]


def tenant_of(message: Message) -> bytes:
    """The tenant part of the record key "tenant/document" (keyless records share one queue)."""
    key = message.key() or b""
    return key.split(b"/", 1)[0]


def partition_of(message: Message) -> Partition:
    return message.topic(), message.partition()


def size_of(message: Message) -> int:
    return len(message.value() or b"")


class ReadAhead:
    def __init__(self, max_bytes: int, max_records: int):
        self.max_bytes = max_bytes
        self.max_records = max_records
        self._queues: dict[bytes, deque[Message]] = {}  # tenant -> its records, in turn order
        self._unfinished: dict[Partition, set[int]] = {}  # queued or being processed
        self._next: Offsets = {}  # each partition's offset after the last record read
        # Partitions revoked since the last take(): records of the batch in hand from them are
        # no longer this consumer's to finish or put back (a re-assignment reads them again).
        self._dropped: set[Partition] = set()
        self._in_turn: set[bytes] = set()  # the tenants served or waiting when the last batch was taken
        self._bytes = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @property
    def full(self) -> bool:
        return self._bytes >= self.max_bytes or self._count >= self.max_records

    @property
    def low(self) -> bool:
        """Room again for reading on (half empty): hysteresis, so a lane is not paused and resumed
        on every record."""
        return self._bytes < self.max_bytes // 2 and self._count < self.max_records // 2

    def add(self, message: Message) -> None:
        partition = partition_of(message)
        self._queues.setdefault(tenant_of(message), deque()).append(message)
        self._unfinished.setdefault(partition, set()).add(message.offset())
        self._next[partition] = message.offset() + 1
        self._counted(message, +1)

    def next_offset(self, partition: Partition) -> int | None:
        """The offset after the last record read from ``partition`` (None: none read since assigned)."""
        return self._next.get(partition)

    def take(self, limit: int, max_bytes: int | None = None) -> list[Message]:
        """Up to ``limit`` records (and, past the first, ``max_bytes`` of values), one of each
        tenant in turn; the tenant served last goes to the back of the turn order, so the next
        batch starts with another."""
        batch: list[Message] = []
        self._dropped = set()
        self._in_turn = set(self._queues)  # the batch's tenants and those its limit leaves out
        room = max_bytes if max_bytes is not None else float("inf")
        while len(batch) < limit and room > 0 and self._queues:
            for tenant in list(self._queues):
                queue = self._queues.pop(tenant)
                message = queue.popleft()
                batch.append(message)
                room -= len(message.value() or b"")
                if queue:
                    self._queues[tenant] = queue  # re-inserted: to the back of the turn order
                if len(batch) == limit or room <= 0:
                    break
        for message in batch:
            self._counted(message, -1)
        return batch

    def newcomer_waiting(self) -> bool:
        """Whether records of a tenant that had none here when the last batch was taken wait.
        A tenant the batch's limit left out is not one: it starts the next batch anyway."""
        return any(tenant not in self._in_turn for tenant in self._queues)

    def put_back(self, messages: list[Message]) -> None:
        """Return records taken but not processed to the front of their tenants' queues, in order."""
        for message in reversed(messages):
            if partition_of(message) in self._dropped:
                continue
            tenant = tenant_of(message)
            queue = self._queues.get(tenant)
            if queue is None:
                queue = self._queues[tenant] = deque()
                self._queues = {tenant: queue, **self._queues}  # first in turn: it was being served
            queue.appendleft(message)
            self._counted(message, +1)

    def finish(self, messages: Iterable[Message]) -> Offsets:
        """Mark records processed; the offsets their partitions may now be committed at."""
        touched: set[Partition] = set()
        for message in messages:
            partition = partition_of(message)
            if partition not in self._dropped and partition in self._unfinished:
                self._unfinished[partition].discard(message.offset())
                touched.add(partition)
        return {p: min(self._unfinished[p], default=self._next[p]) for p in touched}

    def drop(self, partitions: Iterable[Partition]) -> None:
        """Forget revoked partitions: their records are the new owner's to read."""
        gone = set(partitions)
        self._dropped |= gone
        for partition in gone:
            self._unfinished.pop(partition, None)
            self._next.pop(partition, None)
        for tenant, queue in list(self._queues.items()):
            kept: deque[Message] = deque()
            for message in queue:
                if partition_of(message) in gone:
                    self._counted(message, -1)
                else:
                    kept.append(message)
            if kept:
                self._queues[tenant] = kept
            else:
                del self._queues[tenant]

    def _counted(self, message: Message, sign: int) -> None:
        self._bytes += sign * size_of(message)
        self._count += sign
