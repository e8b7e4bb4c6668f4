"""A listing by keyword (Dify's: the documents whose name holds it, case aside) is answered from the
names a gateway holds, kept fresh from each dataset's journal of listing changes: it must equal what
every state says after anything the projector, the gateway and the operator do (redeliveries,
renames, deletes, moves, positions given late, documents disabled and archived, the dataset
deleted, a journal trimmed past what a gateway read), and once held, a listing reads what changed,
not the dataset's states."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas import DocumentStatus, Stage, StatusEvent
from services.gateway.datasets import DatasetCatalog, DatasetRecord
from services.gateway.dify import DISPLAY_STATUSES, display_status
from services.gateway.keyword_listing import KeywordListing
from services.gateway.visibility import DocumentVisibility
from services.projector.listing import CHANGES_KEPT
from services.projector.store import StateStore
from services.runtime.keys import RedisKeys

from tests.support.redis_servers import RedisServer

KEYWORDS = ("", "a", ".TXT", "b.txt", "ticket-1", "zz", "Ä")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    started = RedisServer(Path(tmp_path_factory.mktemp("redis"))).start()
    try:
        yield started
    finally:
        started.stop()


class Deployment:
    def __init__(self, server: RedisServer):
        self.client = server.client()
        self.keys = RedisKeys(f"t{uuid.uuid4().hex[:8]}.")
        self.store = StateStore(self.client, self.keys)
        self.catalog = DatasetCatalog(self.client, self.keys)
        self.visibility = DocumentVisibility(self.client, self.keys, self.store)
        self.offsets = iter(range(1, 10**9))
        assert self.store.index_stored() == 0

    def listing(self, budget: int = 10**6) -> KeywordListing:
        return KeywordListing(self.client, self.keys, self.store, budget)

    def fold(self, document: str, status: DocumentStatus, revision: int = 1, dataset: str = "ds", **fields) -> None:
        stage = Stage.INDEXER if status is DocumentStatus.COMPLETED else Stage.GATEWAY
        self.store.fold(StatusEvent(document_id=document, tenant_id="acme", dataset_id=dataset, revision=revision,
                                    attempt=1, status=status, stage=stage, **fields), next(self.offsets))

    def expected(self, dataset: str, keyword: str, shown: str | None, deleted: bool,
                 read: tuple | None = None) -> list[str]:
        """The listing as computed from every state: name holding the keyword, then as Dify displays
        it, newest first by position, then id (``read``: the dataset's states, positions and
        visibility, as ``read`` answers them)."""
        states, positions, visibility = read or self.read(dataset)
        states = [s for s in states
                  if (deleted or s.status is not DocumentStatus.DELETED) and keyword.lower() in (s.name or "").lower()]
        if shown is not None:
            states = [s for s in states if display_status(s.status, visibility[s.document_id]) == shown]
        return [s.document_id for s in sorted(states, key=lambda s: (positions.get(s.document_id, 0), s.document_id),
                                              reverse=True)]

    def read(self, dataset: str) -> tuple:
        states = self.store.dataset("acme", dataset)
        return (states, self.catalog.positions("acme", dataset),
                self.visibility.of("acme", [s.document_id for s in states]))

    def assert_listed(self, listing: KeywordListing, dataset: str = "ds") -> None:
        read = self.read(dataset)
        for keyword in KEYWORDS:
            for deleted in (False, True):
                for shown in (None, *sorted(DISPLAY_STATUSES)):
                    expected = self.expected(dataset, keyword, shown, deleted, read)
                    page = listing.page("acme", dataset, keyword, shown, deleted, 0, 10_000)
                    assert page == (expected, len(expected)), (keyword, shown, deleted)
                    second = listing.page("acme", dataset, keyword, shown, deleted, 1, 2)
                    assert second == (expected[1:3], len(expected)), (keyword, shown, deleted)


def test_a_held_listing_follows_every_change_as_one_read_afresh_does(server: RedisServer):
    d = Deployment(server)
    held = d.listing()  # read first while the dataset is empty, then kept from its journal
    d.assert_listed(held)

    d.catalog.position("acme", "ds", "a")  # a position given before the document's first state
    d.fold("a", DocumentStatus.WAITING, name="a.txt")
    d.fold("a", DocumentStatus.COMPLETED, segment_count=2, word_count=12, progress=1.0)
    d.fold("b", DocumentStatus.WAITING, name="B.TXT")
    d.assert_listed(held)
    d.fold("b", DocumentStatus.ERROR, error="corrupt")
    d.catalog.position("acme", "ds", "b")  # b's first state came before its position
    d.fold("c", DocumentStatus.COMPLETED, name="ticket-1.txt", segment_count=1, word_count=5, progress=1.0)
    d.fold("c", DocumentStatus.DELETED, revision=2)
    d.fold("d", DocumentStatus.COMPLETED, name="ticket-10.txt", segment_count=1, word_count=7, progress=1.0)
    for name in ("e", "f", "g"):  # never given positions (a producer on Kafka): 0, then by id
        d.fold(name, DocumentStatus.WAITING, name=f"ticket-1{name}.md")
    d.fold("h", DocumentStatus.WAITING, name="Äpfel\x00.txt")  # a name Dify lowercases, with a NUL in it
    d.assert_listed(held)
    d.assert_listed(d.listing())

    # Renamed by a new revision; moved to another dataset; disabled, archived, enabled again.
    d.fold("a", DocumentStatus.WAITING, revision=3, name="renamed-zz.txt")
    d.fold("d", DocumentStatus.WAITING, revision=2, dataset="other", name="ticket-10.txt")
    d.visibility.apply("acme", "ds", "a", "disable")
    d.fold("a", DocumentStatus.COMPLETED, revision=3, segment_count=2, word_count=12, progress=1.0)
    d.visibility.apply("acme", "ds", "c", "archive")
    d.fold("i", DocumentStatus.COMPLETED, name="i.txt", segment_count=1, word_count=4, progress=1.0)
    d.catalog.position("acme", "ds", "i")
    d.visibility.apply("acme", "ds", "i", "archive")
    d.assert_listed(held)
    d.assert_listed(held, "other")
    d.visibility.apply("acme", "ds", "a", "enable")
    d.assert_listed(held)

    # The dataset deleted: its documents have no positions any more.
    d.catalog.delete("acme", DatasetRecord(id="ds", name="ds", implicit=True))
    d.assert_listed(held)


@pytest.mark.parametrize("read_first_while_empty", [True, False])
@pytest.mark.parametrize("trimmed", ["a rename", "a move out and back", "new documents only"])
def test_a_listing_behind_a_trimmed_journal_is_read_again(server: RedisServer, read_first_while_empty: bool,
                                                          trimmed: str):
    d = Deployment(server)
    held = d.listing()
    if not read_first_while_empty:
        d.fold("first", DocumentStatus.WAITING, name="first.txt")
    for n in range(3_000):
        d.fold(f"old-{n}", DocumentStatus.WAITING, name=f"old-{n}.txt")
    d.assert_listed(held)
    for n in range(CHANGES_KEPT // 2 + 200):  # two changes each: more than the journal keeps
        d.fold(f"doc-{n}", DocumentStatus.WAITING, name=f"ticket-{n}.txt")
        d.fold(f"doc-{n}", DocumentStatus.COMPLETED, segment_count=1, word_count=3, progress=1.0)
    if trimmed == "a rename":
        d.fold("old-7", DocumentStatus.WAITING, revision=2, name="zz-renamed.txt")
    elif trimmed == "a move out and back":
        d.fold("old-7", DocumentStatus.WAITING, revision=2, dataset="other", name="old-7.txt")
        d.fold("old-7", DocumentStatus.WAITING, revision=3, name="zz-back.txt")
    for n in range(CHANGES_KEPT):
        d.fold(f"more-{n}", DocumentStatus.WAITING, name="more.txt")
    assert d.client.xlen(d.keys.dataset_listing_changes("acme", "ds")) < 2 * CHANGES_KEPT
    sent = d.client.info("stats")["total_net_output_bytes"]
    held.page("acme", "ds", "zz", None, False, 0, 20)
    read = d.client.info("stats")["total_net_output_bytes"] - sent
    d.assert_listed(held)
    if trimmed == "new documents only":  # the names held are kept: only the new ones are read
        old_states = sum(len(raw) for raw in d.client.hmget(d.keys.states("acme"),
                                                            [f"acme/old-{n}" for n in range(3_000)]))
        new_states = sum(len(raw) for key, raw in d.client.hgetall(d.keys.states("acme")).items()
                         if not key.startswith(b"acme/old-"))
        assert read < new_states + old_states / 2, (read, new_states, old_states)


def test_once_held_a_keyword_listing_reads_what_changed_not_the_states(server: RedisServer):
    d = Deployment(server)
    for n in range(3_000):
        d.catalog.position("acme", "ds", f"doc-{n}")
        d.fold(f"doc-{n}", DocumentStatus.COMPLETED, name=f"Ticket-{n}.txt", segment_count=1, word_count=60,
               progress=1.0)
    states_bytes = sum(len(raw) for raw in d.client.hvals(d.keys.states("acme")))
    listing = d.listing()
    assert listing.page("acme", "ds", "ticket-7", None, False, 0, 20)[1] == 111  # 7, 70-79, 700-799

    d.fold("doc-3000", DocumentStatus.WAITING, name="ticket-7-new.txt")
    d.catalog.position("acme", "ds", "doc-3000")
    d.fold("doc-17", DocumentStatus.WAITING, revision=2, name="renamed.txt")
    sent = d.client.info("stats")["total_net_output_bytes"]
    ids, total = listing.page("acme", "ds", "TICKET-7", None, False, 0, 20)
    read = d.client.info("stats")["total_net_output_bytes"] - sent
    assert (ids[:3], total) == (["doc-3000", "doc-799", "doc-798"], 112)
    assert listing.page("acme", "ds", "renamed", None, False, 0, 20) == (["doc-17"], 1)
    assert states_bytes > 300_000 and read < 5_000, (states_bytes, read)


def test_datasets_past_the_budget_are_not_held(server: RedisServer):
    d = Deployment(server)
    for n in range(30):
        d.fold(f"doc-{n}", DocumentStatus.WAITING, name=f"x-{n}", dataset="large")
        d.fold(f"doc-s{n}", DocumentStatus.WAITING, name=f"x-{n}", dataset=f"small-{n % 3}")
    listing = d.listing(budget=25)
    assert listing.page("acme", "large", "x", None, False, 0, 5) is None  # its states are read instead
    for _ in range(2):
        for n in range(3):
            expected = d.expected(f"small-{n}", "x-1", None, False)
            assert listing.page("acme", f"small-{n}", "x-1", None, False, 0, 100) == (expected, len(expected))
