"""A dataset's documents whose name holds a keyword (Dify's ``keyword``: a substring of the name,
case aside), newest first, from the gateway's memory. Each dataset's names, positions and display
statuses are read once (its sorted sets, and its documents' names from their states), then kept
fresh from its journal of listing changes (``RedisKeys.dataset_listing_changes``: the projector,
the visibility and the position scripts append to it as they move a document in those sets), so a
listing reads what changed since the last one, not every state. The names are held in listing
order as one string, so a keyword is matched by C code, and the page's ids and the total counted
with numpy, never by a Python loop over the dataset's documents.

Held up to ``budget`` documents in all, the datasets read least recently dropped first; a dataset
larger than that is not held (the caller reads its states)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

import numpy as np
import redis

from services.projector.listing import CHANGES_KEPT, LISTED, listed_under
from services.projector.store import StateStore
from services.runtime.keys import RedisKeys

_GONE = len(LISTED)  # what a slot whose document left the dataset is listed under
_SEPARATOR = "\x00"  # between names held (one in a name or keyword is replaced: _held)


class KeywordListing:
    def __init__(self, client: redis.Redis, keys: RedisKeys, states: StateStore, budget: int):
        self._redis = client
        self._keys = keys
        self._states = states
        self._budget = budget
        self._held: OrderedDict[tuple[str, str], _Listing] = OrderedDict()
        self._lock = threading.Lock()

    def page(self, tenant_id: str, dataset_id: str, keyword: str, shown: str | None, deleted: bool,
             offset: int, count: int) -> tuple[list[str], int] | None:
        """The ids of the page of the dataset's documents whose name holds ``keyword``, newest
        first (by position, then id), and how many there are: those Dify displays as ``shown``
        when given, the deleted ones too when ``deleted``. None when the dataset is too large to
        hold."""
        listing = self._listing(tenant_id, dataset_id)
        with listing.lock:
            if not listing.refresh(self):
                self._drop(tenant_id, dataset_id)
                return None
            listed = listed_under(shown, deleted) if shown is not None else [
                name for name in LISTED if deleted or name != "deleted"]
            found = listing.matching(_held(keyword), [LISTED.index(name) for name in listed])
            ids = [listing.ids[slot] for slot in found[offset:offset + count]]
        self._trim()
        return ids, len(found)

    def _listing(self, tenant_id: str, dataset_id: str) -> _Listing:
        with self._lock:
            listing = self._held.get((tenant_id, dataset_id))
            if listing is None:
                listing = self._held[(tenant_id, dataset_id)] = _Listing(tenant_id, dataset_id)
            self._held.move_to_end((tenant_id, dataset_id))
            return listing

    def _drop(self, tenant_id: str, dataset_id: str) -> None:
        with self._lock:
            self._held.pop((tenant_id, dataset_id), None)

    def _trim(self) -> None:
        """Drop the datasets read least recently until those held fit the budget."""
        with self._lock:
            while sum(len(listing.ids) for listing in self._held.values()) > self._budget and len(self._held) > 1:
                self._held.popitem(last=False)


class _Listing:
    """One dataset's documents as held: a slot each (its id, lowercased name, position and the
    index in LISTED of what it is listed under), and a view of the slots in listing order."""

    def __init__(self, tenant_id: str, dataset_id: str):
        self.tenant_id, self.dataset_id = tenant_id, dataset_id
        self.lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        self.cursor: bytes | None = None  # the last journal entry read (b"0-0": the journal was empty)
        self.renamed: bytes | None = None  # the dataset's renames, as counted when its sets were read
        self.ids: list[str] = []
        self.names: list[str] = []
        self.positions: list[int] = []
        self.listed = np.empty(0, dtype=np.int8)
        self.slot_of: dict[str, int] = {}
        self._order: np.ndarray | None = None  # live slots, newest first; None: to sort again
        self._haystack = ""  # their names in that order, each followed by _SEPARATOR
        self._starts = np.empty(0, dtype=np.int64)  # where each begins in the haystack

    def refresh(self, owner: KeywordListing) -> bool:
        """Bring the listing up to date: the journal's entries since the last read, or everything
        read again when the journal no longer holds them. False when the dataset is too large."""
        return self._follow(owner) or self._read_all(owner)

    def _follow(self, owner: KeywordListing) -> bool:
        """Apply the journal's entries since the cursor; False when some may be lost (trimmed, or
        the journal gone) or one says to read everything again."""
        if self.cursor is None:
            return False
        journal = owner._keys.dataset_listing_changes(self.tenant_id, self.dataset_id)
        with owner._redis.pipeline(transaction=True) as pipe:
            pipe.xlen(journal)
            pipe.xrange(journal, min=self.cursor)
            length, entries = pipe.execute()
        entries = _entries(entries)
        if self.cursor == b"0-0":
            # Read when the journal was empty: a trim (which keeps CHANGES_KEPT) may have dropped some since.
            if length >= CHANGES_KEPT:
                return False
        elif not entries or entries[0][0] != self.cursor:
            return False  # the cursor's entry trimmed away: those after it may be too
        else:
            entries = entries[1:]
        unnamed: list[str] = []
        for _, fields in entries:
            if b"r" in fields:
                return False
            document_id = fields[b"d"].decode()
            slot = self.slot_of.get(document_id)
            if b"x" in fields:
                if slot is not None:
                    self._leave(slot)
                continue
            if slot is None:
                if b"l" not in fields:
                    return False  # placed before the cursor yet not held: read everything again
                slot = self._add(document_id, fields[b"n"].decode() if b"n" in fields else None, 0)
                if b"n" not in fields:
                    unnamed.append(document_id)
            elif b"n" in fields:
                self._rename(slot, fields[b"n"].decode())
            if b"l" in fields:
                self.listed[slot] = int(fields[b"l"])
            if b"p" in fields:
                self._move(slot, int(fields[b"p"]))
        if entries:
            self.cursor = entries[-1][0]
        self._name(owner, unnamed)
        return True

    def _read_all(self, owner: KeywordListing) -> bool:
        """Read the dataset's sorted sets, its renames and its journal's last entry at one instant,
        then the names of its documents not held (of all of them, if one was renamed since they
        were read). One renamed meanwhile is in the journal after the cursor."""
        journal = owner._keys.dataset_listing_changes(self.tenant_id, self.dataset_id)
        sets = [owner._keys.dataset_listed_documents(self.tenant_id, self.dataset_id, listed) for listed in LISTED]
        with owner._redis.pipeline(transaction=False) as pipe:
            for listed in sets:
                pipe.zcard(listed)
            if sum(pipe.execute()) > owner._budget:
                return False
        with owner._redis.pipeline(transaction=True) as pipe:
            pipe.xrevrange(journal, count=1)
            pipe.hget(owner._keys.dataset_counts(self.tenant_id), f"{self.tenant_id}/{self.dataset_id}|renamed")
            # The sets' scores are these positions (0 for a document without one).
            pipe.hgetall(owner._keys.document_positions(self.tenant_id, self.dataset_id))
            for listed in sets:
                pipe.zrange(listed, 0, -1)
            last, renamed, positions, *members_of = pipe.execute()
        last = _entries(last)
        held = {document_id: self.names[slot] for document_id, slot in self.slot_of.items()} \
            if renamed == self.renamed else {}
        self._clear()
        self.cursor, self.renamed = (last[0][0] if last else b"0-0"), renamed
        unnamed = []
        for code, members in enumerate(members_of):
            for member in members:
                document_id = member.decode()
                name = held.get(document_id)
                slot = self._add(document_id, name, int(positions.get(member, 0)))
                self.listed[slot] = code
                if name is None:
                    unnamed.append(document_id)
        self._name(owner, unnamed)
        return True

    def _name(self, owner: KeywordListing, document_ids: list[str]) -> None:
        names = owner._states.names(self.tenant_id, document_ids)
        for document_id in document_ids:
            self._rename(self.slot_of[document_id], names.get(document_id) or "")

    def _add(self, document_id: str, name: str | None, position: int) -> int:
        slot = len(self.ids)
        self.ids.append(document_id)
        self.names.append(_held(name or ""))
        self.positions.append(position)
        if slot == len(self.listed):
            self.listed = np.resize(self.listed, max(64, 2 * slot))
        self.listed[slot] = _GONE
        self.slot_of[document_id] = slot
        self._order = None
        return slot

    def _rename(self, slot: int, name: str) -> None:
        if self.names[slot] != _held(name):
            self.names[slot] = _held(name)
            self._order = None

    def _move(self, slot: int, position: int) -> None:
        if self.positions[slot] != position:
            self.positions[slot] = position
            self._order = None

    def _leave(self, slot: int) -> None:
        self.listed[slot] = _GONE
        del self.slot_of[self.ids[slot]]
        self._order = None

    def matching(self, keyword: str, codes: Iterable[int]) -> np.ndarray:
        """The slots whose name holds ``keyword`` listed under one of ``codes``, newest first."""
        if self._order is None:
            self._sort()
        order = self._order
        assert order is not None
        if keyword:
            pieces = self._haystack.split(keyword)
            # Where each occurrence begins, then the name (in order) it falls in: one per name.
            ends = np.cumsum(np.fromiter(map(len, pieces[:-1]), dtype=np.int64, count=len(pieces) - 1)
                             + len(keyword))
            lines = np.searchsorted(self._starts, ends - len(keyword), side="right") - 1
            first_in_line = np.ones(len(lines), dtype=bool)
            first_in_line[1:] = lines[1:] != lines[:-1]  # ascending already
            order = order[lines[first_in_line]]
        wanted = np.zeros(len(LISTED) + 1, dtype=bool)  # and _GONE, never wanted
        wanted[list(codes)] = True
        return order[wanted[self.listed[order]]]

    def _sort(self) -> None:
        """The view in listing order: position, then id, newest first (the sorted sets' order)."""
        live = [slot for slot, document_id in enumerate(self.ids) if self.slot_of.get(document_id) == slot]
        if len(live) < len(self.ids) // 2:  # mostly slots of documents gone: keep only the live ones
            self._compact(live)
            live = list(range(len(self.ids)))
        slots = np.array(live, dtype=np.int64)
        ids = np.array([self.ids[slot] for slot in live], dtype=str)
        positions = np.array([self.positions[slot] for slot in live], dtype=np.int64)
        self._order = slots[np.lexsort((ids, positions))[::-1]]
        names = [self.names[slot] for slot in self._order]
        self._haystack = _SEPARATOR.join(names) + _SEPARATOR
        lengths = np.fromiter(map(len, names), dtype=np.int64, count=len(names)) + 1
        self._starts = np.concatenate(([0], np.cumsum(lengths)[:-1])) if names else np.empty(0, dtype=np.int64)

    def _compact(self, live: list[int]) -> None:
        self.ids = [self.ids[slot] for slot in live]
        self.names = [self.names[slot] for slot in live]
        self.positions = [self.positions[slot] for slot in live]
        self.listed = self.listed[live].copy()
        self.slot_of = {document_id: slot for slot, document_id in enumerate(self.ids)}


def _entries(replied: list) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Stream entries as (id, fields): a cluster's MULTI answers each's fields as a flat list."""
    return [(entry_id, fields if isinstance(fields, dict) else dict(zip(fields[::2], fields[1::2])))
            for entry_id, fields in replied]


def _held(name: str) -> str:
    """A name or keyword as held and matched: lowercased as Dify's ilike does, the separator in it
    replaced (in both alike, so a keyword holding one still matches)."""
    return name.lower().replace(_SEPARATOR, "\ufffd")
