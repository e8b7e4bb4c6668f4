"""The read-ahead a lane serves its batches from: tenants in turn, each tenant's records in order,
and committed offsets that never pass a record not yet finished."""

from __future__ import annotations

from confluent_kafka import Message

from services.runtime.read_ahead import ReadAhead


def record(tenant: str, offset: int, partition: int = 0, document: str = "doc") -> Message:
    return Message(topic="segments", partition=partition, offset=offset, key=f"{tenant}/{document}".encode(),
                   value=b"x" * 10)


def names(batch: list[Message]) -> list[str]:
    return [f"{m.key().decode().split('/')[0]}{m.offset()}" for m in batch]


def filled(*records: Message) -> ReadAhead:
    queue = ReadAhead(max_bytes=1 << 20, max_records=1000)
    for message in records:
        queue.add(message)
    return queue


def test_a_tenant_behind_a_long_backlog_is_served_in_the_next_batch():
    # A's 100 records arrived first, B's 3 after them, all in one partition.
    queue = filled(*[record("a", i) for i in range(100)], *[record("b", 100 + i) for i in range(3)])
    assert names(queue.take(4)) == ["a0", "b100", "a1", "b101"]
    assert names(queue.take(4)) == ["a2", "b102", "a3", "a4"]  # B done; A takes the rest of the batch


def test_each_batch_starts_with_the_tenant_the_last_one_left_out():
    queue = filled(*[record(t, i * 3 + n) for i in range(4) for n, t in enumerate("abc")])
    assert names(queue.take(2)) == ["a0", "b1"]
    assert names(queue.take(2)) == ["c2", "a3"]


def test_a_batch_sized_in_bytes_stops_once_its_records_reach_them_with_one_record_at_least():
    queue = filled(*[record("a", i) for i in range(10)])  # 10 bytes each
    assert names(queue.take(100, max_bytes=25)) == ["a0", "a1", "a2"]
    assert names(queue.take(100, max_bytes=1)) == ["a3"]  # one larger than the budget still goes
    assert len(queue.take(100)) == 6


def test_the_commit_stops_at_the_first_record_not_finished():
    queue = filled(*[record("a", i) for i in range(5)], *[record("b", 5 + i) for i in range(2)])
    batch = queue.take(4)  # a0 b5 a1 b6
    assert queue.finish(batch) == {("segments", 0): 2}  # a2 is next, unfinished: B's 5 and 6 wait for it
    rest = queue.take(10)
    assert queue.finish(rest) == {("segments", 0): 7}


def test_records_put_back_are_served_first_and_in_order():
    queue = filled(*[record("a", i) for i in range(4)], record("b", 4))
    batch = queue.take(3)  # a0 b4 a1
    assert queue.finish(batch[:1]) == {("segments", 0): 1}
    queue.put_back(batch[1:])
    assert len(queue) == 4
    assert names(queue.take(10)) == ["b4", "a1", "a2", "a3"]


def test_a_revoked_partition_is_forgotten_even_for_the_batch_in_hand():
    queue = filled(record("a", 0, partition=0), record("a", 0, partition=1), record("a", 1, partition=1))
    batch = queue.take(2)  # offset 0 of partitions 0 and 1
    queue.drop([("segments", 1)])
    assert queue.finish(batch) == {("segments", 0): 1}  # partition 1 is not ours to commit any more
    queue.put_back(batch[1:])
    assert len(queue) == 0  # neither the record in hand nor the one queued behind it


def test_full_and_low_follow_bytes_and_records():
    queue = ReadAhead(max_bytes=100, max_records=1000)
    for i in range(10):
        queue.add(record("a", i))
    assert queue.full and not queue.low
    queue.take(6)
    assert not queue.full and queue.low


def test_a_tenant_arriving_after_the_batch_was_taken_is_a_newcomer():
    queue = filled(*[record("a", i) for i in range(10)], record("c", 10))
    queue.take(1)  # a0: c was left out by the limit, it is next in turn anyway
    assert not queue.newcomer_waiting()
    queue.add(record("b", 11))
    assert queue.newcomer_waiting()
    assert names(queue.take(3)) == ["c10", "a1", "b11"]
    queue.add(record("a", 12))
    assert not queue.newcomer_waiting()  # a was in turn when the batch was taken
