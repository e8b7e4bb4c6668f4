"""Document states in the state Redis: one hash of states, one hash of the status-topic offset each
was folded through (so the live projector and a rebuild never overwrite a newer state with an
older one). Every state is also published on its tenant's channel, for live dashboards (all those a
batch's events make, in order), and indexed in the same script that writes it: each dataset's documents
counted by status with their words (what a document counted is stored beside it, so the counts stay
exact whatever is written again, replayed or rebuilt), and placed in its dataset's sorted sets by
position, all of them and by display status (listing.py), so a dataset's figures and a page of its
documents, of any status, are read without its states."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import orjson
import redis

from schemas import STATE, TERMINAL_STATUSES, DocumentState, DocumentStatus, Priority, StatusEvent
from services.projector import listing
from services.projector.state import apply
from services.runtime.keys import RedisKeys, by_tenant, per_tenant, tenant_of_key
from services.runtime.packing import STATES
from services.runtime.registry import FINISHED_LUA
from services.runtime.tenants import Tenants, fields_of


class StateStore:
    def __init__(self, client: redis.Redis, keys: RedisKeys):
        self._redis = client
        self._keys = keys
        self._tenants = Tenants(client, keys)
        self._compare_and_set = client.register_script(_COMPARE_AND_SET)
        self._index_stored = client.register_script(_INDEX_STORED)
        self._relist = client.register_script(_RELIST)
        self._complete = False

    def ping(self) -> bool:
        return bool(self._redis.ping())

    def get(self, key: str) -> DocumentState | None:
        raw = self._redis.hget(self._keys.states(tenant_of_key(key)), key)
        return STATE.decode(STATES.unpack(key, raw)) if raw is not None else None

    def get_many(self, keys: Iterable[str]) -> list[DocumentState]:
        """The states of the documents known, in the order asked."""
        return [STATE.decode(raw) for raw in self._raw_states(keys)]

    def as_json(self, keys: Iterable[str]) -> list[dict]:
        """``get_many`` as the JSON objects stored, not built into models: for a caller that polls
        its documents several times a second and only passes their states on."""
        return [orjson.loads(raw) for raw in self._raw_states(keys)]

    def _raw_states(self, keys: Iterable[str]) -> list[bytes]:
        """The states (JSON) of the documents known, in the order asked, in one round trip."""
        keys = list(keys)
        found = fields_of(self._redis, self._keys.states, keys)
        return [STATES.unpack(key, found[key]) for key in keys if key in found]

    def pages(self, size: int = 500) -> Iterator[list[DocumentState]]:
        """Every state, a page at a time, tenant by tenant (a live scan: states may move meanwhile)."""
        for tenant_id in self._tenants.all():
            page: list[DocumentState] = []
            for key, raw in self._redis.hscan_iter(self._keys.states(tenant_id), count=size):
                page.append(STATE.decode(STATES.unpack(key.decode(), raw)))
                if len(page) == size:
                    yield page
                    page = []
            if page:
                yield page

    def names(self, tenant_id: str, document_ids: list[str]) -> dict[str, str | None]:
        """The names of the tenant's documents with a state, by id: from their states, a thousand
        per round trip (a dataset's every name never in one command)."""
        keys = [f"{tenant_id}/{document_id}" for document_id in document_ids]
        return {state["document_id"]: state.get("name")
                for start in range(0, len(keys), 1000) for state in self.as_json(keys[start:start + 1000])}

    def searchable_revisions(self, keys: Iterable[str]) -> dict[str, int]:
        """The revision search may serve, per document key (documents serving none are absent)."""
        return {s.key: s.searchable_revision for s in self.get_many(keys) if s.searchable_revision is not None}

    def dataset(self, tenant_id: str, dataset_id: str) -> list[DocumentState]:
        """Every state of the dataset's documents, deleted ones too."""
        return [s for s in self.get_many(self._document_keys(tenant_id, [dataset_id])) if s.dataset_id == dataset_id]

    def datasets(self, tenant_id: str, dataset_ids: Iterable[str]) -> dict[str, list[DocumentState]]:
        """``dataset`` of each of several datasets, in two round trips whatever their number (a
        page of a tenant's dataset list)."""
        dataset_ids = list(dataset_ids)
        keys = self._document_keys(tenant_id, dataset_ids)
        by_dataset: dict[str, list[DocumentState]] = {dataset_id: [] for dataset_id in dataset_ids}
        for state in self.get_many(keys):
            if state.dataset_id in by_dataset:
                by_dataset[state.dataset_id].append(state)
        return by_dataset

    def dataset_json(self, tenant_id: str, dataset_id: str) -> list[dict]:
        """``dataset`` as the JSON objects stored, not built into models: for a caller that reads
        a field or two of every document of a dataset (a metadata filter) on every request."""
        keys = self._document_keys(tenant_id, [dataset_id])
        return [s for s in self.as_json(keys) if s.get("dataset_id") == dataset_id]

    def _document_keys(self, tenant_id: str, dataset_ids: list[str]) -> list[str]:
        """The keys of the datasets' documents, deleted ones too, sorted: from their sorted sets
        (until they are complete, as while a deployment's older states are being indexed, from
        every state there is)."""
        if not self.indexes_complete():
            wanted = {(tenant_id, dataset_id) for dataset_id in dataset_ids}
            return sorted(key.decode() for key, raw in self._redis.hscan_iter(self._keys.states(tenant_id), count=1000)
                          if _tenant_and_dataset(key, raw) in wanted)
        with self._redis.pipeline(transaction=False) as pipe:
            for dataset_id in dataset_ids:
                pipe.zrange(self._keys.dataset_live_documents(tenant_id, dataset_id), 0, -1)
                pipe.zrange(self._keys.dataset_listed_documents(tenant_id, dataset_id, "deleted"), 0, -1)
            found = pipe.execute()
        return sorted({f"{tenant_id}/{member.decode()}" for members in found for member in members})

    def indexes_complete(self) -> bool:
        """Whether every state is counted and placed in its dataset's sorted sets (once true, for
        good: kept by every write since)."""
        if not self._complete:
            self._complete = bool(self._redis.exists(self._keys.dataset_indexes_complete))
        return self._complete

    def dataset_figures(self, tenant_id: str, dataset_ids: Iterable[str]) -> dict[str, DatasetFigures]:
        """Each dataset's documents by status and words, in one round trip whatever its size (from
        the counts; by reading its states while a deployment's older states are being counted)."""
        dataset_ids = list(dataset_ids)
        if not self.indexes_complete():
            return {dataset_id: DatasetFigures.of(states)
                    for dataset_id, states in self.datasets(tenant_id, dataset_ids).items()}
        fields = [f"{tenant_id}/{dataset_id}|{name}" for dataset_id in dataset_ids for name in _COUNTED]
        values = iter(self._redis.hmget(self._keys.dataset_counts(tenant_id), fields) if fields else [])
        figures = {}
        for dataset_id in dataset_ids:
            counted = {name: int(value or 0) for name, value in zip(_COUNTED, values)}
            words = counted.pop("words")
            figures[dataset_id] = DatasetFigures(Counter({k: n for k, n in counted.items() if n}), words)
        return figures

    def status_totals(self) -> Counter[str]:
        """Every document by its status, from the datasets' counts (or read from every state while
        a deployment's older states are being counted)."""
        if not self.indexes_complete():
            return self.census().statuses
        totals: Counter[str] = Counter()
        for tenant_id in self._tenants.all():
            for field_name, value in self._redis.hgetall(self._keys.dataset_counts(tenant_id)).items():
                status = field_name.decode().rpartition("|")[2]
                if status in _STATUSES:  # not "words", nor "renamed"
                    totals[status] += int(value)
        return totals

    def newest_first(self, tenant_id: str, dataset_id: str, offset: int, count: int, deleted: bool = False,
                     shown: str | None = None) -> tuple[list[DocumentState], int]:
        """A page of the dataset's documents, newest first (by position, then id), and how many
        there are (those Dify displays as ``shown``, when given): read from its sorted sets,
        whatever the dataset's size. Once ``indexes_complete``."""
        if shown is None:
            sets = [self._keys.dataset_live_documents(tenant_id, dataset_id)]
            if deleted:
                sets.append(self._keys.dataset_listed_documents(tenant_id, dataset_id, "deleted"))
        else:
            sets = [self._keys.dataset_listed_documents(tenant_id, dataset_id, listed)
                    for listed in listing.listed_under(shown, deleted)]
        # Two sets (with the deleted ones) are merged from their heads: their first offset + count
        # are enough, as a listing's later pages are rarely read.
        start = 0 if len(sets) > 1 else offset
        with self._redis.pipeline(transaction=True) as pipe:
            for ordered in sets:
                pipe.zrange(ordered, start, offset + count - 1, desc=True, withscores=True)
            for ordered in sets:
                pipe.zcard(ordered)
            found = pipe.execute()
        heads, total = found[:len(sets)], sum(found[len(sets):])
        ids = [member for member, _ in sorted((pair for head in heads for pair in head),
                                              key=lambda pair: (pair[1], pair[0]), reverse=True)]
        ids = ids[offset - start:offset - start + count]
        return self.get_many(f"{tenant_id}/{document_id.decode()}" for document_id in ids), total

    def relist(self, tenant_id: str, dataset_id: str, document_id: str) -> None:
        """List the document again under what it is displayed as now (its visibility changed)."""
        self._relist(keys=[self._keys.state_positions(tenant_id), self._keys.state_counted(tenant_id),
                           self._keys.document_visibility(tenant_id),
                           self._keys.document_positions(tenant_id, dataset_id),
                           self._keys.dataset_listing_changes(tenant_id, dataset_id),
                           *self._listed_keys(tenant_id, dataset_id)],
                     args=[f"{tenant_id}/{document_id}", document_id, f"{tenant_id}/{dataset_id}"])

    def _listed_keys(self, tenant_id: str, dataset_id: str) -> list[str]:
        return [self._keys.dataset_listed_documents(tenant_id, dataset_id, listed) for listed in listing.LISTED]

    def _placement_keys(self, tenant_id: str, dataset_id: str) -> list[str]:
        """What ``place`` (the Lua below) keeps of a document in this dataset, in its order."""
        return [self._keys.document_positions(tenant_id, dataset_id),
                self._keys.dataset_live_documents(tenant_id, dataset_id), self._keys.document_visibility(tenant_id),
                *self._listed_keys(tenant_id, dataset_id), self._keys.dataset_listing_changes(tenant_id, dataset_id)]

    def index_stored(self, page: int = 500) -> int:
        """Count every state and place it in its dataset's sorted sets, as it is now (states written
        before these were kept, or some of them), then mark them complete; the states indexed. Safe
        beside live writes: what a state counted is taken away before it is counted again."""
        if self.indexes_complete():
            return 0
        indexed = 0
        for tenant_id in self._tenants.all():
            states = self._keys.states(tenant_id)
            cursor = None
            while cursor != 0:
                cursor, raws = self._redis.hscan(states, cursor or 0, count=page)
                pending = [(key.decode(), raw) for key, raw in raws.items()]
                while pending:  # a state written meanwhile is looked at again
                    keys = [states, self._keys.state_positions(tenant_id), self._keys.state_counted(tenant_id),
                            self._keys.dataset_counts(tenant_id)]
                    args: list[str | bytes] = []
                    for key, raw in pending:
                        state = STATES.loads(key, raw)
                        words = state.get("word_count") if state["status"] != DocumentStatus.DELETED.value else 0
                        keys += self._placement_keys(tenant_id, state["dataset_id"])
                        args += [key, raw, state["document_id"], state["status"],
                                 f"{state['dataset_id']}|{state['status']}|{words if isinstance(words, int) else 0}"]
                    outcomes = self._index_stored(keys=keys, args=args)  # one script, as a cluster pipelines none
                    indexed += sum(outcome == 1 for outcome in outcomes)
                    changed = [key for (key, _), outcome in zip(pending, outcomes) if outcome == -1]
                    pending = [(key, raw) for key, raw in zip(changed, self._redis.hmget(states, changed))
                               if raw is not None] if changed else []
        self._redis.set(self._keys.dataset_indexes_complete, 1)
        self._complete = True
        for key in self._redis.scan_iter(match=self._keys.dataset_keys_before("*", "*"), count=page):
            self._redis.delete(key)  # read only until now
        return indexed

    def census(self) -> Census:
        """Documents by status, and the backlog: documents not yet terminal by lane and tenant."""
        census = Census()
        for tenant_id in self._tenants.all():
            for key, raw in self._redis.hscan_iter(self._keys.states(tenant_id), count=1000):
                state = STATES.loads(key.decode(), raw)
                census.statuses[state["status"]] += 1
                if state["status"] not in TERMINAL_STATUSES:
                    lane = census.backlog.setdefault(state.get("priority", Priority.INTERACTIVE), {})
                    lane.setdefault(state["tenant_id"], Counter())[state["status"]] += 1
        return census

    def fold(self, event: StatusEvent, position: int) -> DocumentState | None:
        """Fold the status event at offset ``position`` into the stored state: the new state, or
        None when the reducer finds nothing new in it. The reducer, not the offset, decides what
        counts (offsets restart when an embedded broker loses its topics, states do not); the
        offset only orders writes against a rebuild. A compare-and-set on it makes a write that
        raced a rebuild fold again onto what the rebuild wrote."""
        while True:
            previous, stored_position = self._get_positioned(event.key)
            state = apply(previous, event)
            if state is None:
                # The very event folded last, redelivered (a crash before its state was published):
                # publish that state again.
                return previous if stored_position == position else None
            if self._save(state, previous, max(stored_position, position), expected=stored_position):
                return state

    def fold_many(self, events: Iterable[tuple[StatusEvent, int]]) -> dict[tuple[str, int], DocumentState | None]:
        """``fold`` of a batch's events (each with its offset), each document's written once: its
        states read in one round trip, its events folded in order in memory, its last state written
        in one script for the batch (every state folded announced, in order). Per (document key,
        offset): what ``fold`` would answer for that event. A document whose state moved meanwhile
        is folded again event by event."""
        by_key: dict[str, list[tuple[StatusEvent, int]]] = {}
        for event, position in events:
            by_key.setdefault(event.key, []).append((event, position))
        keys, raws, stored_positions = self._positioned(list(by_key))
        answers: dict[tuple[str, int], DocumentState | None] = {}
        saves = []
        for key, raw, stored in zip(keys, raws, stored_positions):
            previous = STATE.decode(STATES.unpack(key, raw)) if raw is not None else None
            stored_position = _offset(stored)
            state, position, made = previous, stored_position, []
            for event, offset in by_key[key]:
                folded = apply(state, event)
                if folded is None:
                    answers[(key, offset)] = state if position == offset else None
                    continue
                state, position = folded, max(position, offset)
                answers[(key, offset)] = folded
                made.append(folded)
            if made:
                saves.append((state, previous, position, stored_position, made))
        for (state, *_), written in zip(saves, self._save_many(saves)):
            if not written:  # a rebuild or another projector wrote it meanwhile
                for event, offset in by_key[state.key]:
                    answers[(state.key, offset)] = self.fold(event, offset)
        return answers

    def merge(self, folded: Iterable[FoldedState]) -> MergeReport:
        """Write rebuilt states, except where the stored state was folded from a later event (the
        live projector got there first). States the rebuild did not see are left alone."""
        report = MergeReport()
        for item in folded:
            while True:
                previous, stored_position = self._get_positioned(item.state.key)
                if stored_position > item.position:
                    report.kept.append(item.state.key)
                    break
                if self._save(item.state, previous, item.position, expected=stored_position):
                    report.written += 1
                    break
        return report

    def _get_positioned(self, key: str) -> tuple[DocumentState | None, int]:
        _, [raw], [position] = self._positioned([key])
        return (STATE.decode(STATES.unpack(key, raw)) if raw is not None else None), _offset(position)

    def _positioned(self, keys: list[str]) -> tuple[list[str], list[bytes | None], list[bytes | None]]:
        """The documents' keys, stored states and positions, in one round trip whatever their tenants.
        Each tenant's positions are read before its states (one node keeps a pipeline's commands to
        it in order): a state written in between is newer than the position expected, so the
        compare-and-set refuses it and it is folded again, never written over."""
        grouped = by_tenant(keys, str)
        with self._redis.pipeline(transaction=False) as pipe:
            for tenant_id, of_tenant in grouped.items():
                pipe.hmget(self._keys.state_positions(tenant_id), of_tenant)
                pipe.hmget(self._keys.states(tenant_id), of_tenant)
            found = pipe.execute()
        ordered = [key for of_tenant in grouped.values() for key in of_tenant]
        return (ordered, [raw for raws in found[1::2] for raw in raws],
                [position for positions in found[0::2] for position in positions])

    def _save(self, state: DocumentState, previous: DocumentState | None, position: int, expected: int) -> bool:
        return self._save_many([(state, previous, position, expected, [state])])[0]

    def _save_many(self, saves: list[_Save]) -> list[bool]:
        """Write each (state, the state it was folded from, its position, the position expected
        stored, the states it announces): whether it was written, per state. One script per tenant
        (its keys share its slot) and ``_SAVED_AT_ONCE`` states; each dataset's keys named once per
        script, however many of its documents it writes."""
        def save(tenant_id: str, of_tenant: list[_Save]) -> list[bool]:
            self._tenants.enlist([tenant_id])
            return [bool(outcome) for start in range(0, len(of_tenant), _SAVED_AT_ONCE)
                    for outcome in self._compare_and_set(**self._save_script(
                        tenant_id, of_tenant[start:start + _SAVED_AT_ONCE]))]

        return per_tenant(saves, lambda save: save[0].key, save)

    def _save_script(self, tenant_id: str, saves: list[_Save]) -> dict[str, list]:
        """``_COMPARE_AND_SET``'s keys and arguments for some of a tenant's saves."""
        keys = [self._keys.states(tenant_id), self._keys.state_positions(tenant_id),
                self._keys.state_counted(tenant_id), self._keys.dataset_counts(tenant_id),
                self._keys.documents(tenant_id), self._keys.unfinished(tenant_id)]
        blocks: dict[str, int] = {}  # dataset -> where its keys start

        def block(dataset_id: str) -> int:
            if dataset_id not in blocks:
                blocks[dataset_id] = len(keys) + 1
                keys.extend(self._placement_keys(tenant_id, dataset_id))
            return blocks[dataset_id]

        args: list[str | int | bytes] = [self._keys.state_changes(tenant_id)]
        for state, previous, position, expected, made in saves:
            old = previous if previous is not None else state
            live = state.status is not DocumentStatus.DELETED
            counted = f"{state.dataset_id}|{state.status.value}|{state.word_count if live else 0}"
            final = state.status in TERMINAL_STATUSES
            # Its name, for the dataset's journal of listing changes: new, or renamed (or moved in).
            named = f"+{state.name or ''}" if previous is None else f"={state.name or ''}" \
                if (previous.dataset_id, previous.name) != (state.dataset_id, state.name) else ""
            announced = [STATE.encode(s) for s in made]
            # Packed once final: a state in flight is written again within seconds, as JSON meanwhile.
            stored = STATES.pack(state.key, state.revision, announced[-1]) if final else announced[-1]
            args += [b"\n".join(announced), state.key, stored, position, expected, counted, state.document_id,
                     state.status.value, block(state.dataset_id), block(old.dataset_id),
                     state.revision if final else "", named]
        return {"keys": keys, "args": args}


def _offset(stored: bytes | None) -> int:
    """The status-topic offset in a state position ("<offset>|<counted>", or "<offset>" from before)."""
    return int(stored.partition(b"|")[0]) if stored is not None else -1


def _tenant_and_dataset(key: bytes, raw: bytes) -> tuple[str, str]:
    state = STATES.loads(key.decode(), raw)
    return state["tenant_id"], state["dataset_id"]


# A state to write: the state, the one it was folded from, its position, the position expected
# stored, and every state its events made on the way (announced in order, it last).
_Save = tuple[DocumentState, DocumentState | None, int, int, list[DocumentState]]
_SAVED_AT_ONCE = 100  # states per script: a batch's are written in a few short scripts, not one long
_STATUSES = frozenset(status.value for status in DocumentStatus)
_COUNTED = (*(status.value for status in DocumentStatus), "words")


@dataclass
class DatasetFigures:
    statuses: Counter[str]  # its documents by status, deleted ones too
    words: int  # of its documents not deleted

    @property
    def live(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != DocumentStatus.DELETED)

    @classmethod
    def of(cls, states: Iterable[DocumentState]) -> DatasetFigures:
        statuses: Counter[str] = Counter()
        words = 0
        for state in states:
            statuses[state.status.value] += 1
            words += state.word_count if state.status is not DocumentStatus.DELETED else 0
        return cls(statuses, words)


@dataclass
class Census:
    statuses: Counter[str] = field(default_factory=Counter)
    backlog: dict[str, dict[str, Counter[str]]] = field(default_factory=dict)  # lane -> tenant -> status -> n


@dataclass(frozen=True)
class FoldedState:
    """A state and the status-topic offset of the last event folded into it (one document's events
    share one partition, so offsets order them)."""

    state: DocumentState
    position: int


@dataclass
class MergeReport:
    written: int = 0
    kept: list[str] = field(default_factory=list)  # the live projector had folded a later event


# What a state counts ("dataset|status|words", beside its offset) is taken away from the dataset
# counts before what its new state counts is added; a document's place in its dataset's sorted sets
# is its position there (0 until the gateway gives it one, which moves it then).
_INDEXES = listing.LUA + """
-- What the document ``key`` (tenant/document) counts: "tenant/dataset" (the counts' fields begin
-- so), its status and its words. Kept without the tenant, or with it as before ("tenant/dataset|...").
local function counted_parts(key, counted)
  local dataset, status, words = string.match(counted, '^(.+)|([^|]+)|(%d+)$')
  if not string.find(dataset, '/', 1, true) then dataset = string.match(key, '^[^/]+') .. '/' .. dataset end
  return dataset, status, words
end
local function count(counts, key, counted, sign)
  local dataset, status, words = counted_parts(key, counted)
  redis.call('HINCRBY', counts, dataset .. '|' .. status, sign)
  if words ~= '0' then redis.call('HINCRBY', counts, dataset .. '|words', sign * tonumber(words)) end
end
-- A document's field in the state positions: "<offset>|<counted>", the status-topic offset its state
-- folds through and what the counts hold of it ("dataset|status|words"); or "<offset>" alone, as
-- kept before the two shared a field, its counted then in the state-counted hash (KEYS[legacy]).
local function positioned(positions, legacy, key)
  local stored = redis.call('HGET', positions, key)
  local offset, counted = string.match(stored or '', '^(-?%d+)|(.+)$')
  if offset then return offset, counted end
  return stored or '-1', redis.call('HGET', legacy, key)
end
-- Count the document's state as ``counted`` instead of ``before``; keep it with its offset.
local function recount(positions, legacy, counts, key, offset, before, counted)
  if before ~= counted then
    if before then count(counts, key, before, -1) end
    count(counts, key, counted, 1)
  end
  redis.call('HSET', positions, key, offset .. '|' .. counted)
  redis.call('HDEL', legacy, key)
end
-- KEYS from `first`: the dataset's positions, its sorted set of live documents, the tenant's
-- visibility, its sorted sets by display status, its journal of listing changes; from `old_first`,
-- those of its dataset before (the same, unless it moved). ``named``: "+<its name>" when new,
-- "=<its name>" when renamed or moved in, else ''.
local function place(first, old_first, document, status, named)
  if KEYS[old_first + 1] ~= KEYS[first + 1] then
    redis.call('ZREM', KEYS[old_first + 1], document)
    journal(KEYS[old_first + 11], document, 'x', 1)
  end
  local position = tonumber(redis.call('HGET', KEYS[first], document) or '0')
  if status ~= 'deleted' then
    redis.call('ZADD', KEYS[first + 1], position, document)
  else
    redis.call('ZREM', KEYS[first + 1], document)
  end
  local listed = list_shown(first + 3, old_first + 3, document, status, redis.call('HGET', KEYS[first + 2], document),
                            position)
  if named ~= '' then
    journal(KEYS[first + 11], document, 'l', LISTED_INDEX[listed], 'p', position, 'n', string.sub(named, 2))
  else
    journal(KEYS[first + 11], document, 'l', LISTED_INDEX[listed], 'p', position)
  end
end
"""

# Write each state only if its document's position is still the one it was folded from; count it
# and place it; announce every state its batch made on the way, it last (as JSON, which has no raw
# newline, so they travel as one argument, a line each); a final one is no longer unfinished for
# the stall sweep. All of one tenant. KEYS: states, their positions, state-counted (before), the
# counts, the registry, the unfinished set; then per dataset ``place``'s 12 keys. ARGV[1]: the
# tenant's channel (a channel is no key: a cluster publishes it to every node); then per state 12:
# the states made on the way and it, its key, the state as stored (packed once final:
# services/runtime/packing.py), its position, the position expected, what it counts, its id, its
# status, where its dataset's keys start, where those of its dataset before start (the same,
# unless it moved), its revision if final ('' if not), and "+<its name>" when new, "=<its name>"
# when renamed or moved in ('' if neither): the dataset's renames are counted ("tenant/dataset|
# renamed" in the counts), so a reader holding its names knows whether those it holds still hold.
# Per state 1 if written, 0 if not.
_COMPARE_AND_SET = _INDEXES + FINISHED_LUA + """
local written = {}
for i = 0, (#ARGV - 1) / 12 - 1 do
  local a = 12 * i + 2
  local key, k, old = ARGV[a + 1], tonumber(ARGV[a + 8]), tonumber(ARGV[a + 9])
  local offset, before = positioned(KEYS[2], KEYS[3], key)
  if tonumber(offset) ~= tonumber(ARGV[a + 4]) then
    written[i + 1] = 0
  else
    redis.call('HSET', KEYS[1], key, ARGV[a + 2])
    recount(KEYS[2], KEYS[3], KEYS[4], key, ARGV[a + 3], before, ARGV[a + 5])
    place(k, old, ARGV[a + 6], ARGV[a + 7], ARGV[a + 11])
    if string.sub(ARGV[a + 11], 1, 1) == '=' then
      redis.call('HINCRBY', KEYS[4], (counted_parts(key, ARGV[a + 5])) .. '|renamed', 1)
    end
    for made in string.gmatch(ARGV[a], '[^\\n]+') do redis.call('PUBLISH', ARGV[1], made) end
    if ARGV[a + 10] ~= '' then finished(KEYS[5], KEYS[6], key, ARGV[a + 10]) end
    written[i + 1] = 1
  end
end
return written
"""

# Count and place each stored state as read (those written before the counts or some of the sets
# were kept), if it is still stored as read. KEYS: states, their positions, state-counted (before),
# the counts, then per document ``place``'s twelve keys. ARGV per document 5: its key, its state as
# read, its id, its status, what it counts. Per document 1, or 0 when it is gone, or -1 when it was
# written since.
_INDEX_STORED = _INDEXES + """
local outcomes = {}
for i = 0, #ARGV / 5 - 1 do
  local a = 5 * i + 1
  local outcome = 0
  local raw = redis.call('HGET', KEYS[1], ARGV[a])
  if raw and raw ~= ARGV[a + 1] then
    outcome = -1
  elseif raw then
    local offset, before = positioned(KEYS[2], KEYS[3], ARGV[a])
    recount(KEYS[2], KEYS[3], KEYS[4], ARGV[a], offset, before, ARGV[a + 4])
    place(12 * i + 5, 12 * i + 5, ARGV[a + 2], ARGV[a + 3], '')
    outcome = 1
  end
  outcomes[i + 1] = outcome
end
return outcomes
"""

# List a document again under what it is displayed as, if its state (as counted) is in the dataset
# given. KEYS: the state positions, state-counted (before), the tenant's visibility, the dataset's
# positions, its journal of listing changes, its sets by display status. ARGV: the document's key,
# its id, "tenant/dataset".
_RELIST = _INDEXES + """
local _, counted = positioned(KEYS[1], KEYS[2], ARGV[1])
if not counted then return 0 end
local dataset, status = counted_parts(ARGV[1], counted)
if dataset ~= ARGV[3] then return 0 end
local position = tonumber(redis.call('HGET', KEYS[4], ARGV[2]) or '0')
local listed = list_shown(6, 6, ARGV[2], status, redis.call('HGET', KEYS[3], ARGV[2]), position)
journal(KEYS[5], ARGV[2], 'l', LISTED_INDEX[listed], 'p', position)
return 1
"""
